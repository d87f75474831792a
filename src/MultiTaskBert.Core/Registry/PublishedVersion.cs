using System.Text.Json.Nodes;

namespace MultiTaskBert.Core.Registry;

/// <summary>One published bundle version: its number (0 is the bundle's own manifest.json) and its manifest.</summary>
public sealed record PublishedVersion(long Number, JsonObject Manifest);
