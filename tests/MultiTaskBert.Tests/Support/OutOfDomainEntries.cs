using System.Text.Json.Nodes;

namespace MultiTaskBert.Tests.Support;

/// <summary>
/// The fixture's classification tasks carry the toolkit's out-of-domain distance (a second head output
/// at its own trunk layer) and its fallback. Tests that point an entry at another head graph, or move
/// its branch layer, strip them first, so that the check they aim at is the one that answers.
/// </summary>
public static class OutOfDomainEntries
{
    public static JsonNode Strip(JsonNode task)
    {
        ArgumentNullException.ThrowIfNull(task);
        task["head"]!.AsObject().Remove("outOfDomain");
        JsonObject output = task["output"]!.AsObject();
        if ((string?)output["fallback"]?["rule"] == "mahalanobis")
        {
            output.Remove("fallback");
        }

        return task;
    }
}
