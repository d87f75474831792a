using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Api.Endpoints;

/// <summary>
/// Checks the shape and the configured limits of a request before it reaches the engine.
/// Errors are keyed by the JSON path of the field (<c>inputs[3].text</c>, named by <paramref name="fields"/>)
/// and say the limit. What only the snapshot can check (task names, pairs, fallback thresholds) the engine checks.
/// </summary>
internal sealed class RequestValidator(LimitsOptions limits, RequestFieldNames fields)
{
    public Dictionary<string, string[]> Validate(ClassifyRequest request)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        ValidateText(errors, fields.Input(0, "text"), request.Text, required: true);
        ValidateText(errors, fields.Input(0, "textPair"), request.TextPair, required: false);
        ValidateTasks(errors, request.Tasks);
        return errors;
    }

    public Dictionary<string, string[]> Validate(ClassifyBatchRequest request)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        if (request.Inputs is null || request.Inputs.Count == 0)
        {
            Add(errors, RequestFieldNames.Inputs, "at least one input is required");
        }
        else if (request.Inputs.Count > limits.MaxBatchInputs)
        {
            Add(errors, RequestFieldNames.Inputs, $"must have at most {limits.MaxBatchInputs} entries, got {request.Inputs.Count}");
        }
        else
        {
            for (int i = 0; i < request.Inputs.Count; i++)
            {
                if (request.Inputs[i] is not { } input)
                {
                    Add(errors, fields.Input(i), "must be an object with text");
                    continue;
                }

                ValidateText(errors, fields.Input(i, "text"), input.Text, required: true);
                ValidateText(errors, fields.Input(i, "textPair"), input.TextPair, required: false);
            }
        }

        ValidateTasks(errors, request.Tasks);
        return errors;
    }

    private void ValidateText(Dictionary<string, string[]> errors, string field, string? text, bool required)
    {
        if (text is null)
        {
            if (required)
            {
                Add(errors, field, "is required");
            }
        }
        else if (string.IsNullOrWhiteSpace(text))
        {
            Add(errors, field, "must not be empty");
        }
        else if (text.Length > limits.MaxTextChars)
        {
            Add(errors, field, $"must be at most {limits.MaxTextChars} characters, got {text.Length}");
        }
    }

    private void ValidateTasks(Dictionary<string, string[]> errors, IReadOnlyList<string>? tasks)
    {
        if (tasks is null)
        {
            return;
        }

        if (tasks.Count == 0)
        {
            Add(errors, RequestFieldNames.Tasks, "must name at least one task when present (omit it to run every fitting task)");
        }
        else if (tasks.Count > limits.MaxTasksPerRequest)
        {
            Add(errors, RequestFieldNames.Tasks, $"must have at most {limits.MaxTasksPerRequest} entries, got {tasks.Count}");
        }
        else
        {
            for (int i = 0; i < tasks.Count; i++)
            {
                if (string.IsNullOrWhiteSpace(tasks[i]))
                {
                    Add(errors, RequestFieldNames.Task(i), "must be a task name");
                }
            }
        }
    }

    private static void Add(Dictionary<string, string[]> errors, string field, string message) =>
        errors[field] = errors.TryGetValue(field, out string[]? existing) ? [.. existing, message] : [message];
}
