using System.Globalization;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace RecDistill.Serving.Http;

/// <summary>A request the service will not answer as asked: becomes an RFC 9457 problem-details response.</summary>
internal sealed class RequestProblem(int status, string title, string detail) : Exception(detail)
{
    public int Status { get; } = status;
    public string Title { get; } = title;
    public string Detail { get; } = detail;
}

/// <summary>
/// Reads and checks what a request sends: query parameters (only those the endpoint takes, each once),
/// k, id lists, and JSON bodies (content type, size, shape). Every mistake is a <see cref="RequestProblem"/>
/// that names what is wrong; nothing is guessed.
/// </summary>
internal static class RequestInput
{
    /// <summary>Rejects query parameters the endpoint does not take, and any given twice.</summary>
    public static void CheckQuery(HttpRequest request, params string[] taken)
    {
        foreach (var (key, values) in request.Query)
        {
            if (!taken.Contains(key, StringComparer.Ordinal))
                throw new RequestProblem(400, "Unknown query parameter",
                    taken.Length == 0 ? $"this endpoint takes no query parameters (got '{key}')"
                        : $"unknown query parameter '{key}' (this endpoint takes {string.Join(", ", taken)})");
            if (values.Count > 1 && key != "exclude")
                throw new RequestProblem(400, "Repeated query parameter", $"query parameter '{key}' is given {values.Count} times");
        }
    }

    /// <summary>k from the query string: absent means the default; otherwise a whole number from 1 to the largest k.</summary>
    public static int K(HttpRequest request, ServingOptions options)
    {
        var values = request.Query["k"];
        return values.Count == 0 ? options.DefaultK : ParseK(values[0], options);
    }

    public static int ParseK(string? text, ServingOptions options)
    {
        if (text is not null && text.Length <= 10 && text.All(char.IsAsciiDigit)
            && int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int k) && k >= 1 && k <= options.MaxK)
            return k;
        throw BadK($"'{text}'", options);
    }

    private static RequestProblem BadK(string given, ServingOptions options) =>
        new(400, "Invalid k", $"k must be a whole number from 1 to {options.MaxK}, not {given}");

    /// <summary>The ids of a comma-separated query parameter that may also be repeated (exclude=1,2&amp;exclude=3); empty entries skipped.</summary>
    public static IReadOnlyList<string> IdList(HttpRequest request, string name, ServingOptions options)
    {
        var ids = request.Query[name].SelectMany(v => (v ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
        if (ids.Count > options.MaxItemList)
            throw new RequestProblem(400, $"Too many ids in {name}", $"{name} lists {ids.Count} ids; the most is {options.MaxItemList}");
        return ids;
    }

    /// <summary>
    /// The request body as a JSON object with only the given properties: 415 unless the content type is
    /// JSON, 413 when larger than the limit, 400 when it is not a JSON object or has other properties.
    /// </summary>
    public static async Task<Dictionary<string, JsonElement>> JsonObject(HttpRequest request, ServingOptions options, params string[] properties)
    {
        if (!IsJson(request.ContentType))
            throw new RequestProblem(415, "Unsupported media type",
                request.ContentType is null ? "send the body as application/json (no Content-Type was given)"
                    : $"send the body as application/json, not '{request.ContentType}'");
        if (request.ContentLength > options.MaxBodyBytes) throw TooLarge(request.ContentLength.Value, options);
        var bytes = await ReadAtMost(request.Body, options.MaxBodyBytes, request.HttpContext.RequestAborted);
        if (bytes.Length == 0)
            throw new RequestProblem(400, "Empty body", $"the body is empty: send a JSON object with {string.Join(" and ", properties.Select(p => $"\"{p}\""))}");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw new RequestProblem(400, "Invalid JSON", $"the body is not valid JSON: {e.Message}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new RequestProblem(400, "Invalid body", $"the body must be a JSON object with {string.Join(" and ", properties.Select(p => $"\"{p}\""))}");
            var result = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (!properties.Contains(p.Name, StringComparer.Ordinal))
                    throw new RequestProblem(400, "Unknown property", $"unknown property \"{p.Name}\" (this request takes {string.Join(", ", properties.Select(x => $"\"{x}\""))})");
                if (!result.TryAdd(p.Name, p.Value.Clone()))
                    throw new RequestProblem(400, "Repeated property", $"property \"{p.Name}\" is given twice");
            }
            return result;
        }
    }

    /// <summary>k from a JSON body: absent or null means the default.</summary>
    public static int K(Dictionary<string, JsonElement> body, ServingOptions options)
    {
        if (!body.TryGetValue("k", out var k) || k.ValueKind == JsonValueKind.Null) return options.DefaultK;
        if (k.ValueKind == JsonValueKind.Number && k.TryGetInt32(out int value) && value >= 1 && value <= options.MaxK) return value;
        throw BadK(k.GetRawText(), options);
    }

    /// <summary>
    /// A required array of string ids: 400 when missing, empty or not strings; <paramref name="tooManyStatus"/>
    /// (413 for an oversized batch) when longer than <paramref name="max"/>.
    /// </summary>
    public static IReadOnlyList<string> Ids(Dictionary<string, JsonElement> body, string name, int max, int tooManyStatus)
    {
        if (!body.TryGetValue(name, out var array) || array.ValueKind != JsonValueKind.Array)
            throw new RequestProblem(400, "Invalid body", $"\"{name}\" must be an array of ids (strings), e.g. [\"42\"]");
        int n = array.GetArrayLength();
        if (n == 0) throw new RequestProblem(400, "Invalid body", $"\"{name}\" is empty: give at least one id");
        if (n > max) throw new RequestProblem(tooManyStatus, "Too many ids", $"\"{name}\" has {n} ids; the most in one request is {max}");
        var ids = new List<string>(n);
        int j = 0;
        foreach (var e in array.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.String)
                throw new RequestProblem(400, "Invalid body", $"{name}[{j}] is {e.GetRawText()}: ids are strings, e.g. \"42\"");
            ids.Add(e.GetString()!);
            j++;
        }
        return ids;
    }

    private static bool IsJson(string? contentType) =>
        MediaTypeHeaderValue.TryParse(contentType, out var media) && media.MediaType.HasValue
        && (media.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || media.MediaType.Value!.EndsWith("+json", StringComparison.OrdinalIgnoreCase));

    private static RequestProblem TooLarge(long size, ServingOptions options) =>
        new(413, "Request too large", $"the body has {size} bytes; the most is {options.MaxBodyBytes}");

    private static async Task<byte[]> ReadAtMost(Stream body, long limit, CancellationToken cancel)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int n;
        while ((n = await body.ReadAsync(chunk, cancel)) > 0)
        {
            if (buffer.Length + n > limit) throw new RequestProblem(413, "Request too large", $"the body is larger than {limit} bytes");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }
}
