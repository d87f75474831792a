using MultiTaskBert.Api.Configuration;

namespace MultiTaskBert.Api.Hosting;

internal static class AdminServiceCollectionExtensions
{
    /// <summary>The <c>Admin</c> options (validated at start) that switch the task registry endpoints on and size uploads.</summary>
    public static IServiceCollection AddAdminApi(this IServiceCollection services)
    {
        services.AddOptions<AdminOptions>().BindConfiguration(AdminOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        return services;
    }
}
