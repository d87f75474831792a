// Runs the Kiota and NSwag clients generated from the served document (Generated/) against the real
// host: every endpoint once, the v2 answers typed per kind through an exhaustive switch, one typed
// error each, and a head upload from each admin client. Any mismatch throws (exit code != 0).
// Arguments: base address, admin key, a manifest entry (JSON) and its head file to upload.
using System.Text.Json;
using System.Text.Json.Nodes;

string baseUrl = args[0], adminKey = args[1];
string entryJson = File.ReadAllText(args[2]);
string headPath = args[3];

using var http = new HttpClient();
http.DefaultRequestHeaders.Add("X-Api-Key", adminKey); // the admin operations' scheme; the public API ignores it when Auth:ApiKeys is empty

var fallbackTask = JsonNode.Parse(await http.GetStringAsync($"{baseUrl}/tasks"))!["tasks"]!.AsArray()
    .FirstOrDefault(t => t!["fallback"] is not null && (string?)t["input"] == "single");

await ClientChecks.KiotaCheck.RunAsync(http, baseUrl, entryJson, headPath, (string?)fallbackTask?["name"]);
await ClientChecks.NSwagCheck.RunAsync(http, baseUrl, entryJson, headPath, (string?)fallbackTask?["name"]);
Console.WriteLine("C# clients (Kiota, NSwag): every check passed");

namespace ClientChecks
{
    internal static class Check
    {
        public static void That(bool condition, string what)
        {
            if (!condition)
            {
                throw new InvalidOperationException($"client check failed: {what}");
            }
        }

        public const string Single = "play the new album by the beatles, i love it";
        public const string OutOfScope = "how do i get better at chess";

        /// <summary>The manifest entry to upload under a new task name.</summary>
        public static string EntryNamed(string entryJson, string name)
        {
            JsonObject entry = JsonNode.Parse(entryJson)!.AsObject();
            entry["name"] = name;
            return entry.ToJsonString();
        }
    }

    internal static class KiotaCheck
    {
        public static async Task RunAsync(HttpClient http, string baseUrl, string entryJson, string headPath, string? fallbackTask)
        {
            using var adapter = new Microsoft.Kiota.Http.HttpClientLibrary.HttpClientRequestAdapter(
                new Microsoft.Kiota.Abstractions.Authentication.AnonymousAuthenticationProvider(), httpClient: http) { BaseUrl = baseUrl };
            var client = new KiotaClient.MtbKiotaClient(adapter);

            var tasks = await client.Tasks.GetAsync();
            Check.That(tasks!.Tasks!.Count > 0 && tasks.Tasks.All(t => t.Kind is not null && t.Input is not null), "kiota: GET /tasks typed kind and input");
            var kinds = tasks.Tasks.Select(t => t.Kind!.Value.ToString().ToLowerInvariant()).ToHashSet();

            var v1 = await client.Classify.PostAsync(new() { Text = Check.Single });
            Check.That(v1!.Model!.Length > 0 && v1.Results!.AdditionalData.Count > 0, "kiota: POST /classify");
            var v1Batch = await client.Classify.Batch.PostAsync(new() { Inputs = [new() { Text = Check.Single }, new() { Text = "hello" }] });
            Check.That(v1Batch!.Results!.Count == 2, "kiota: POST /classify/batch");

            // Every task named, so that kinds outside the default selection (the embedding) and tasks served only when named answer too.
            List<string> Named(bool pairs) => [.. tasks.Tasks.Where(t => (t.Input!.Value.ToString().ToLowerInvariant() == "pair") == pairs).Select(t => t.Name!)];
            var seen = new HashSet<string>();
            var single = await client.V2.Classify.PostAsync(new() { Text = Check.Single, Tasks = Named(pairs: false) });
            var pair = await client.V2.Classify.PostAsync(new() { Text = "A man is playing a guitar.", TextPair = "A person plays an instrument.", Tasks = Named(pairs: true) });
            foreach (var answer in single!.Results!.Concat(pair!.Results!))
            {
                seen.Add(Describe(answer));
            }

            Check.That(kinds.SetEquals(seen), $"kiota: every kind answered typed ({string.Join(",", seen)} of {string.Join(",", kinds)})");
            var batch = await client.V2.Classify.Batch.PostAsync(new() { Inputs = [new() { Text = Check.Single }, new() { Text = "hello" }] });
            Check.That(batch!.Inputs!.Count == 2 && batch.Inputs.All(i => i.Results!.Count > 0), "kiota: POST /v2/classify/batch");

            if (fallbackTask is not null)
            {
                var oos = await client.V2.Classify.PostAsync(new() { Text = Check.OutOfScope, Tasks = [fallbackTask] });
                var answer = (KiotaClient.Models.ClassificationAnswer)oos!.Results!.Single();
                Check.That(answer.Fallback?.TopLabel is { Length: > 0 } && answer.Fallback.Rule is { Length: > 0 }, "kiota: the fallback typed");
            }

            try
            {
                await client.V2.Classify.PostAsync(new() { Text = "" });
                Check.That(false, "kiota: an empty text is refused");
            }
            catch (KiotaClient.Models.HttpValidationProblemDetails problem)
            {
                Check.That(problem.Status == 400 && problem.Message.StartsWith("text:", StringComparison.Ordinal)
                    && problem.Errors!.AdditionalData.ContainsKey("text") && problem.TraceId is { Length: > 0 }, "kiota: the 400 typed, its message the problem's detail");
            }

            var body = new Microsoft.Kiota.Abstractions.MultipartBody();
            body.AddOrReplacePart("manifest", "application/json", new MemoryStream(System.Text.Encoding.UTF8.GetBytes(Check.EntryNamed(entryJson, "upload-kiota"))));
            body.AddOrReplacePart("head", "application/octet-stream", File.OpenRead(headPath), "head.onnx");
            var uploaded = await client.Admin.Tasks.Upload.PostAsync(body);
            Check.That(uploaded!.Action == "added" && uploaded.HeadFile!.StartsWith("heads/", StringComparison.Ordinal), "kiota: head upload");
            var served = await client.V2.Classify.PostAsync(new() { Text = Check.Single, Tasks = ["upload-kiota"] });
            Check.That(served!.Results!.Single() is KiotaClient.Models.ClassificationAnswer, "kiota: the uploaded head serves");
            try
            {
                await client.Admin.Tasks.PostAsync(new() { Name = "upload-kiota" });
                Check.That(false, "kiota: an incomplete entry is refused");
            }
            catch (KiotaClient.Models.ProblemDetails problem)
            {
                Check.That(problem.Status is 400 or 422 && problem.Detail!.Length > 0, "kiota: the admin problem typed");
            }

            var removed = await client.Admin.Tasks["upload-kiota"].DeleteAsync();
            Check.That(removed!.Action == "removed", "kiota: DELETE /admin/tasks/{name}");
            var reload = await client.Admin.Reload.PostAsync();
            Check.That(reload!.Unchanged!.Count > 0, "kiota: POST /admin/reload");
            Console.WriteLine("kiota: every check passed");
        }

        /// <summary>Exhaustive over the generated answer types: a kind the check does not know fails it.</summary>
        private static string Describe(KiotaClient.Models.TaskAnswer answer) => answer switch
        {
            KiotaClient.Models.ClassificationAnswer c when c.Label is { Length: > 0 } && c.Score > 0 => "classification",
            KiotaClient.Models.RegressionAnswer r when double.IsFinite(r.Value ?? double.NaN) => "regression",
            KiotaClient.Models.TaggingAnswer t when t.Tags!.Count > 0 && t.Entities is not null => "tagging",
            KiotaClient.Models.EmbeddingAnswer e when e.Embedding is { Count: > 0 } => "embedding",
            KiotaClient.Models.ExamplesAnswer x when x.Label is { Length: > 0 } => "examples",
            _ => throw new InvalidOperationException($"kiota: an answer of an unknown or empty kind: {answer.GetType().Name} {answer.Kind}"),
        };
    }

    internal static class NSwagCheck
    {
        public static async Task RunAsync(HttpClient http, string baseUrl, string entryJson, string headPath, string? fallbackTask)
        {
            var client = new NSwagClient.MtbNSwagClient(http) { BaseUrl = baseUrl };

            var tasks = await client.ListTasksAsync();
            Check.That(tasks.Tasks.Count > 0, "nswag: GET /tasks");
            var kinds = tasks.Tasks.Select(t => t.Kind.ToString().ToLowerInvariant()).ToHashSet();

            var v1 = await client.ClassifyAsync(new() { Text = Check.Single });
            Check.That(v1.Model.Length > 0 && v1.Results.Count > 0, "nswag: POST /classify");
            var v1Batch = await client.ClassifyBatchAsync(new() { Inputs = [new() { Text = Check.Single }, new() { Text = "hello" }] });
            Check.That(v1Batch.Results.Count == 2, "nswag: POST /classify/batch");

            // Every task named, so that kinds outside the default selection (the embedding) and tasks served only when named answer too.
            List<string> Named(bool pairs) => [.. tasks.Tasks.Where(t => (t.Input.ToString().ToLowerInvariant() == "pair") == pairs).Select(t => t.Name)];
            var seen = new HashSet<string>();
            var single = await client.ClassifyV2Async(new() { Text = Check.Single, Tasks = Named(pairs: false) });
            var pair = await client.ClassifyV2Async(new() { Text = "A man is playing a guitar.", TextPair = "A person plays an instrument.", Tasks = Named(pairs: true) });
            foreach (var answer in single.Results.Concat(pair.Results))
            {
                seen.Add(Describe(answer));
            }

            Check.That(kinds.SetEquals(seen), $"nswag: every kind answered typed ({string.Join(",", seen)} of {string.Join(",", kinds)})");
            var batch = await client.ClassifyBatchV2Async(new() { Inputs = [new() { Text = Check.Single }, new() { Text = "hello" }] });
            Check.That(batch.Inputs.Count == 2 && batch.Inputs.All(i => i.Results.Count > 0), "nswag: POST /v2/classify/batch");

            if (fallbackTask is not null)
            {
                var oos = await client.ClassifyV2Async(new() { Text = Check.OutOfScope, Tasks = [fallbackTask] });
                var answer = (NSwagClient.ClassificationAnswer)oos.Results.Single();
                Check.That(answer.Fallback?.TopLabel is { Length: > 0 }, "nswag: the fallback typed");
            }

            try
            {
                await client.ClassifyV2Async(new() { Text = "" });
                Check.That(false, "nswag: an empty text is refused");
            }
            catch (NSwagClient.ApiException<NSwagClient.HttpValidationProblemDetails> problem)
            {
                Check.That(problem.StatusCode == 400 && problem.Result.Detail.StartsWith("text:", StringComparison.Ordinal)
                    && problem.Result.Errors.ContainsKey("text"), "nswag: the 400 typed");
            }

            await using FileStream head = File.OpenRead(headPath);
            var uploaded = await client.UploadTaskAsync(Check.EntryNamed(entryJson, "upload-nswag"), new NSwagClient.FileParameter(head, "head.onnx", "application/octet-stream"));
            Check.That(uploaded.Action == "added", "nswag: head upload");
            var served = await client.ClassifyV2Async(new() { Text = Check.Single, Tasks = ["upload-nswag"] });
            Check.That(served.Results.Single() is NSwagClient.ClassificationAnswer, "nswag: the uploaded head serves");
            try
            {
                await client.AddOrReplaceTaskAsync(new() { Name = "upload-nswag" });
                Check.That(false, "nswag: an incomplete entry is refused");
            }
            catch (NSwagClient.ApiException problem)
            {
                Check.That(problem.StatusCode is 400 or 422, $"nswag: the admin problem ({problem.StatusCode})");
            }

            var removed = await client.RemoveTaskAsync("upload-nswag");
            Check.That(removed.Action == "removed", "nswag: DELETE /admin/tasks/{name}");
            var reload = await client.ReloadManifestAsync();
            Check.That(reload.Unchanged.Count > 0, "nswag: POST /admin/reload");
            Console.WriteLine("nswag: every check passed");
        }

        private static string Describe(NSwagClient.TaskAnswer answer) => answer switch
        {
            NSwagClient.ClassificationAnswer c when c.Label.Length > 0 && c.Scores.ContainsKey(c.Label) || c is { Fallback: not null } => "classification",
            NSwagClient.RegressionAnswer r when double.IsFinite(r.Value) => "regression",
            NSwagClient.TaggingAnswer t when t.Tags.Count > 0 => "tagging",
            NSwagClient.EmbeddingAnswer e when e.Embedding.Count > 0 => "embedding",
            NSwagClient.ExamplesAnswer x when x.Label.Length > 0 => "examples",
            _ => throw new InvalidOperationException($"nswag: an answer of an unknown or empty kind: {answer.GetType().Name}"),
        };
    }
}
