namespace MultiTaskBert.Api.Management;

/// <summary>Endpoint metadata: the listeners the endpoint answers on. Endpoints without it are <see cref="Listeners.Public"/>.</summary>
public sealed record ServedOnMetadata(Listeners Listeners);
