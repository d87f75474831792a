using System.Text.Json.Nodes;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// A change to publish, planned on top of the version in service: the bundle it makes, its
/// manifest, the tasks to warm up before publishing, and one line saying what it changed.
/// </summary>
internal sealed record PlannedVersion(ModelBundle Bundle, JsonObject Manifest, IReadOnlyList<string> WarmUp, string Change);
