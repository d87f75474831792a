using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace MultiTaskBert.Tests.Faults;

/// <summary>One generated request; <see cref="Make"/> builds a fresh message each time.</summary>
public sealed record HostileCase(string Category, string Name, Func<HttpRequestMessage> Make);

/// <summary>
/// Seeded, bounded generator of hostile requests (issue #19): malformed JSON, wrong types, size
/// limits, unicode edge cases, headers and charsets, hostile multipart and admin payloads. The
/// same seed gives the same cases; the count per category is fixed, so the run time is bounded.
/// </summary>
public static class HostileCases
{
    public const int MaxTextChars = 2000;
    public const int MaxBatchInputs = 64;
    public const int MaxRequestBodyBytes = 1024 * 1024;

    public static IReadOnlyList<HostileCase> Generate(int seed, int perCategory, string adminKey, byte[] validHead, IReadOnlyList<byte[]> tamperedHeads)
    {
        var random = new Random(seed);
        var cases = new List<HostileCase>();
        for (int i = 0; i < perCategory; i++)
        {
            cases.Add(MalformedJson(random, i));
            cases.Add(WrongTypes(random, i));
            cases.Add(Unicode(random, i));
            cases.Add(Headers(random, i));
            cases.Add(Multipart(random, i, adminKey, validHead, tamperedHeads));
            cases.Add(AdminJson(random, i, adminKey));
        }

        cases.AddRange(SizeLimits());
        return cases;
    }

    private static readonly string[] ValidBodies =
    [
        """{"text":"a fine film","tasks":["sst2"]}""",
        """{"text":"a man plays","textPair":"someone plays","tasks":["rte","stsb"]}""",
        """{"inputs":[{"text":"good"},{"text":"a","textPair":"b"}],"tasks":["sst2"]}""",
        """{"text":"wake me up at 7 am tomorrow"}""",
    ];

    private static string PathFor(string body) => body.Contains("\"inputs\"", StringComparison.Ordinal) ? "/classify/batch" : "/classify";

    private static HostileCase MalformedJson(Random random, int i)
    {
        string valid = ValidBodies[random.Next(ValidBodies.Length)];
        int kind = i % 8;
        string body = kind switch
        {
            0 => valid[..random.Next(valid.Length)],                                              // truncated
            1 => valid.Insert(random.Next(valid.Length), ((char)random.Next(32, 127)).ToString()), // a stray character
            2 => new string('[', 2000 + random.Next(5000)),                                     // deep nesting
            3 => valid + "garbage",
            4 => valid.Replace('"', '\''),                                                    // single quotes
            5 => "{\"text\": NaN}",
            6 => "{\"text\":\"a\" /* comment */}",
            _ => valid.Remove(random.Next(valid.Length), 1),                                    // a character dropped
        };
        byte[] bytes = kind == 7 && i % 16 == 15 ? RandomBytes(random, 1 + random.Next(300)) : Encoding.UTF8.GetBytes(body);
        return Json("malformed JSON", $"#{i} kind {kind}", PathFor(valid), bytes);
    }

    private static JsonNode?[] WrongValues() =>
        [JsonValue.Create(5), JsonValue.Create(true), new JsonArray(), new JsonObject(), null, JsonValue.Create(-1.5e300), JsonValue.Create("x"), new JsonArray(1, "a", null)];

    private static HostileCase WrongTypes(Random random, int i)
    {
        JsonNode?[] values = WrongValues();
        JsonNode? value = values[random.Next(values.Length)];
        JsonObject body = (i % 6) switch
        {
            0 => new JsonObject { ["text"] = value },
            1 => new JsonObject { ["text"] = "hi", ["tasks"] = value },
            2 => new JsonObject { ["text"] = "hi", ["tasks"] = new JsonArray(value) },
            3 => new JsonObject { ["inputs"] = value },
            4 => new JsonObject { ["inputs"] = new JsonArray(value, new JsonObject { ["text"] = "a" }) },
            _ => new JsonObject { ["text"] = "hi", ["textPair"] = value },
        };
        string text = body.ToJsonString();
        return Json("wrong types", $"#{i}", PathFor(text), Encoding.UTF8.GetBytes(text));
    }

    private static readonly string[] UnicodeTexts =
    [
        "\\ud800", "\\udc00x", "a\\u0000b", "\\u202e\\u202dabc", "e\\u0301\\u0301\\u0301", "\\ufeff", "\\uffff", "\\u3000\\u3000", "\\u200b\\u200b",
        "😀👍🏽‍", "Ǆǅǆ İı ß ΣΣ", "中文한국어日本語", "\\u0000", "\\t\\r\\n", "[SEP] [CLS] [PAD] [UNK] [MASK]",
    ];

    private static HostileCase Unicode(Random random, int i)
    {
        string piece = UnicodeTexts[random.Next(UnicodeTexts.Length)];
        int repeat = 1 + random.Next(i % 3 == 0 ? 300 : 5);
        string text = string.Concat(Enumerable.Repeat(piece, repeat));
        if (i % 5 == 4)
        {
            // Raw bytes that are not UTF-8: overlong '/', a lone continuation byte, a truncated sequence.
            byte[][] invalid = [[0xC0, 0xAF], [0x80], [0xE2, 0x82], [0xF5, 0x80, 0x80, 0x80], [0xED, 0xA0, 0x80]];
            byte[] bad = invalid[random.Next(invalid.Length)];
            byte[] bytes = [.. "{\"text\":\"a"u8, .. bad, .. "b\"}"u8];
            return Json("unicode", $"#{i} invalid UTF-8", "/classify", bytes);
        }

        string body = i % 2 == 0
            ? $"{{\"text\":\"{text}\",\"tasks\":[\"sst2\",\"snips_slots\"]}}"
            : $"{{\"inputs\":[{{\"text\":\"{text}\"}},{{\"text\":\"x\",\"textPair\":\"{text}\"}}]}}";
        return Json("unicode", $"#{i}", PathFor(body), Encoding.UTF8.GetBytes(body));
    }

    private static readonly string[] ContentTypes =
    [
        "application/json; charset=bogus", "application/json; charset=utf-16", "application/json; charset=\"utf-8\"", "application/json; charset=",
        "application/json; charset=utf-8; charset=latin1", "text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data",
        "application/json;;;", "application/problem+json; charset=bogus", "application/merge-patch+json", "*/*", "application/json; boundary=x",
    ];

    private static HostileCase Headers(Random random, int i)
    {
        string contentType = ContentTypes[random.Next(ContentTypes.Length)];
        string body = ValidBodies[random.Next(ValidBodies.Length)];
        string path = PathFor(body);
        return new HostileCase("headers and charsets", $"#{i} {contentType}", () =>
        {
            var message = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) };
            message.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            message.Headers.TryAddWithoutValidation("X-Request-Id", (i % 4) switch
            {
                0 => new string('r', 500),
                1 => "with space",
                2 => "ok-id." + i,
                _ => "semi;colon",
            });
            if (i % 7 == 3)
            {
                message.Headers.TryAddWithoutValidation("Content-Encoding", "gzip");
            }

            return message;
        });
    }

    private static HostileCase Multipart(Random random, int i, string adminKey, byte[] validHead, IReadOnlyList<byte[]> tamperedHeads)
    {
        const string entryJson = """{"name":"sst2","version":1,"description":"x","input":"single","branchLayer":1,"pretrainedFingerprint":"0","output":{"kind":"classification","labels":["a","b"]},"head":{"inputs":{"hiddenStates":"hidden_states","attentionMask":"attention_mask"},"output":"logits"}}""";
        int kind = i % 10;
        string boundary = "b" + random.Next(1000);
        string Part(string name, string content) => $"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{content}\r\n";
        byte[]? head = kind switch
        {
            5 => tamperedHeads[random.Next(tamperedHeads.Count)],
            6 => RandomBytes(random, 10 + random.Next(4000)),
            7 => validHead[..random.Next(validHead.Length)],
            _ => null,
        };
        string contentType = kind switch
        {
            0 => "multipart/form-data",
            1 => $"multipart/form-data; boundary={new string('x', 200)}",
            _ => $"multipart/form-data; boundary={boundary}",
        };
        string text = kind switch
        {
            2 => $"--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{{}}",                  // truncated
            3 => Part("manifest", entryJson) + Part("manifest", entryJson) + $"--{boundary}--\r\n",                // twice
            4 => $"--{boundary}\r\nX-Other: 1\r\n\r\nabc\r\n--{boundary}--\r\n",                                   // no disposition
            8 => Part("manifest", "{\"name\":\"x\",\"name\":\"y\"}") + Part("head", "onnx") + $"--{boundary}--\r\n", // duplicate keys
            9 => Part(new string('n', 5000), "v") + $"--{boundary}--\r\n",
            _ => "",
        };
        byte[] bytes = head is null
            ? Encoding.UTF8.GetBytes(text)
            : [.. Encoding.UTF8.GetBytes(Part("manifest", entryJson.Replace("\"version\":1", "\"version\":9", StringComparison.Ordinal)) +
                $"--{boundary}\r\nContent-Disposition: form-data; name=\"head\"; filename=\"h.onnx\"\r\n\r\n"),
               .. head, .. Encoding.UTF8.GetBytes($"\r\n--{boundary}--\r\n")];
        return new HostileCase("hostile multipart", $"#{i} kind {kind}", () =>
        {
            var message = new HttpRequestMessage(HttpMethod.Post, "/admin/tasks") { Content = new ByteArrayContent(bytes) };
            message.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
            message.Headers.Add("X-Api-Key", adminKey);
            return message;
        });
    }

    private static readonly string[] HostileNames = ["nl\n", "sst\u04302", "\u212a", "SST2", "", new string('a', 65), "a/b", "../x", "a b", "sst2\u0000"];

    private static readonly string[] HostilePaths = ["heads/sst2.onnx\u0000", "../manifest.json", "/etc/passwd", "heads\\sst2.onnx", "heads/../../x.onnx", "", "heads/none.onnx", "heads/\n.onnx"];

    private static readonly string[] EntryMembers = ["version", "branchLayer", "output", "head", "input", "name"];

    private static HostileCase AdminJson(Random random, int i, string adminKey)
    {
        var entry = new JsonObject
        {
            ["name"] = "fuzz" + i,
            ["version"] = 1,
            ["description"] = "fuzz",
            ["input"] = "single",
            ["branchLayer"] = 1,
            ["pretrainedFingerprint"] = "0",
            ["output"] = new JsonObject { ["kind"] = "classification", ["labels"] = new JsonArray("a", "b") },
            ["head"] = new JsonObject { ["file"] = "heads/sst2.onnx", ["inputs"] = new JsonObject { ["hiddenStates"] = "hidden_states", ["attentionMask"] = "attention_mask" }, ["output"] = "logits" },
        };
        JsonNode?[] values = WrongValues();
        string method = "POST", path = "/admin/tasks";
        switch (i % 6)
        {
            case 0: entry["name"] = HostileNames[random.Next(HostileNames.Length)]; break;
            case 1: entry["head"]!["file"] = HostilePaths[random.Next(HostilePaths.Length)]; break;
            case 2: entry[EntryMembers[random.Next(EntryMembers.Length)]] = values[random.Next(values.Length)]?.DeepClone(); break;
            case 3: method = "DELETE"; path = "/admin/tasks/" + Uri.EscapeDataString(HostileNames[random.Next(HostileNames.Length)] + "x"); break;
            case 4: entry["head"]!["sha256"] = new string('0', 64); break;
            default: method = "POST"; path = "/admin/reload"; break;
        }

        byte[] bytes = Encoding.UTF8.GetBytes(entry.ToJsonString());
        bool wrongKey = i % 11 == 10;
        return new HostileCase("hostile admin JSON", $"#{i} {method} {path}", () =>
        {
            var message = new HttpRequestMessage(new HttpMethod(method), path);
            if (method == "POST" && path == "/admin/tasks")
            {
                message.Content = new ByteArrayContent(bytes);
                message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            }

            message.Headers.Add("X-Api-Key", wrongKey ? adminKey + "x" : adminKey);
            return message;
        });
    }

    /// <summary>Both sides of every limit, bodies near the byte limit sent with Content-Length and chunked.</summary>
    private static IEnumerable<HostileCase> SizeLimits()
    {
        foreach (int chars in new[] { MaxTextChars - 1, MaxTextChars, MaxTextChars + 1 })
        {
            string body = $"{{\"text\":\"{new string('a', chars)}\"}}";
            yield return Json("size limits", $"text of {chars} characters", "/classify", Encoding.UTF8.GetBytes(body));
        }

        foreach (int count in new[] { MaxBatchInputs - 1, MaxBatchInputs, MaxBatchInputs + 1 })
        {
            string body = "{\"inputs\":[" + string.Join(",", Enumerable.Repeat($"{{\"text\":\"{new string('w', MaxTextChars)}\"}}", count)) + "]}";
            yield return Json("size limits", $"{count} inputs of {MaxTextChars} characters", "/classify/batch", Encoding.UTF8.GetBytes(body));
        }

        foreach (int count in new[] { 32, 33 })
        {
            string body = "{\"text\":\"a\",\"tasks\":[" + string.Join(",", Enumerable.Repeat("\"sst2\"", count)) + "]}";
            yield return Json("size limits", $"{count} tasks", "/classify", Encoding.UTF8.GetBytes(body));
        }

        foreach (int bytes in new[] { 1_048_000, MaxRequestBodyBytes, MaxRequestBodyBytes + 1 })
        {
            byte[] body = PaddedBody(bytes);
            yield return Json("size limits", $"{bytes} bytes with Content-Length", "/classify", body);
            yield return new HostileCase("size limits", $"{bytes} bytes chunked", () =>
            {
                var content = new StreamContent(new MemoryStream(body));
                content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                var message = new HttpRequestMessage(HttpMethod.Post, "/classify") { Content = content };
                message.Headers.TransferEncodingChunked = true;
                return message;
            });
        }
    }

    /// <summary>A JSON body of exactly <paramref name="bytes"/> bytes (whitespace padding: valid JSON).</summary>
    public static byte[] PaddedBody(int bytes)
    {
        byte[] start = "{\"text\":\"a\"}"u8.ToArray();
        byte[] body = new byte[bytes];
        start.CopyTo(body, 0);
        body.AsSpan(start.Length).Fill((byte)' ');
        return body;
    }

    private static byte[] RandomBytes(Random random, int length)
    {
        byte[] bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static HostileCase Json(string category, string name, string path, byte[] body) => new(category, name, () =>
    {
        var message = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return message;
    });
}
