using Microsoft.AspNetCore.Routing.Matching;

namespace MultiTaskBert.Api.Management;

/// <summary>
/// Routing policy (the mechanism behind <c>RequireHost</c>, on the local port instead of the Host
/// header): an endpoint not served on the listener a request came in on does not match, so the
/// request gets the same 404 as an unknown path.
/// </summary>
internal sealed class ListenerMatcherPolicy(ManagementListener listener) : MatcherPolicy, IEndpointSelectorPolicy
{
    // Beside the built-in host policy (-100); the order among selector policies does not matter here.
    public override int Order => -100;

    public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) => listener.HasOwnPort;

    public Task ApplyAsync(HttpContext httpContext, CandidateSet candidates)
    {
        Listeners arrivedOn = listener.ArrivedOn(httpContext);
        for (int i = 0; i < candidates.Count; i++)
        {
            Listeners servedOn = candidates[i].Endpoint.Metadata.GetMetadata<ServedOnMetadata>()?.Listeners ?? Listeners.Public;
            if ((servedOn & arrivedOn) == 0)
            {
                candidates.SetValidity(i, false);
            }
        }

        return Task.CompletedTask;
    }
}
