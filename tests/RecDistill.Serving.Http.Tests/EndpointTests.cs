using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace RecDistill.Serving.Http.Tests;

/// <summary>Every endpoint and every kind of bad input, through the framework's test host.</summary>
public sealed class EndpointTests : IDisposable
{
    private readonly TempFolder _dir = new();
    private readonly TinyModel _tiny = new();
    private readonly ServingFactory _factory;
    private readonly HttpClient _client;

    public EndpointTests()
    {
        var path = _tiny.Write(_dir.File("model.rdm"));
        _factory = new ServingFactory(new ServingOptions { ModelPath = path, MaxK = 50, MaxBatchUsers = 5, MaxItemList = 6, MaxBodyBytes = 4096 });
        _client = _factory.CreateClient();
    }

    public void Dispose()
    {
        _client.Dispose();
        _factory.Dispose();
        _dir.Dispose();
    }

    internal static async Task<(HttpStatusCode Status, JsonElement Body, string? ContentType)> Send(HttpClient client, HttpRequestMessage request)
    {
        using var response = await client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        var body = text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
        return (response.StatusCode, body, response.Content.Headers.ContentType?.MediaType);
    }

    private Task<(HttpStatusCode Status, JsonElement Body, string? ContentType)> Get(string url) =>
        Send(_client, new HttpRequestMessage(HttpMethod.Get, url));

    private Task<(HttpStatusCode Status, JsonElement Body, string? ContentType)> Post(string url, string body, string contentType = "application/json") =>
        Send(_client, new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, contentType) });

    private static string[] Items(JsonElement list) => list.EnumerateArray().Select(e => e.GetProperty("item").GetString()!).ToArray();

    /// <summary>An RFC 9457 problem: its content type, status, a title and a detail, and no trace of the code.</summary>
    private static JsonElement AssertProblem((HttpStatusCode Status, JsonElement Body, string? ContentType) r, HttpStatusCode status, string detailPart)
    {
        Assert.Equal(status, r.Status);
        Assert.Equal("application/problem+json", r.ContentType);
        Assert.Equal((int)status, r.Body.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrEmpty(r.Body.GetProperty("title").GetString()));
        var detail = r.Body.GetProperty("detail").GetString()!;
        Assert.Contains(detailPart, detail);
        var raw = r.Body.GetRawText();
        Assert.DoesNotContain("Exception", raw);
        Assert.DoesNotContain(" at RecDistill", raw);
        Assert.DoesNotContain("System.", raw);
        return r.Body;
    }

    [Fact]
    public async Task User_recommendations_are_the_full_ranking_without_seen_items()
    {
        for (int u = 0; u < _tiny.UserIds.Length; u++)
        {
            var r = await Get($"/v1/users/{_tiny.UserIds[u]}/recommendations?k=7");
            Assert.Equal(HttpStatusCode.OK, r.Status);
            Assert.Equal("application/json", r.ContentType);
            Assert.Equal(_tiny.UserIds[u].ToString(), r.Body.GetProperty("user").GetString());
            var items = r.Body.GetProperty("items");
            Assert.Equal(_tiny.Ranking(_tiny.UserVector(u), 7, _tiny.Train[u]), Items(items));
            var scores = items.EnumerateArray().Select(e => e.GetProperty("score").GetDouble()).ToArray();
            Assert.Equal(scores.OrderDescending(), scores);
            Assert.Equal(_tiny.Score(_tiny.UserVector(u), _tiny.ItemIndex(items[0].GetProperty("item").GetString()!)), scores[0], 5);
        }
    }

    [Fact]
    public async Task Default_k_is_20_and_exclude_leaves_items_out()
    {
        var all = await Get("/v1/users/10/recommendations");
        Assert.Equal(20, all.Body.GetProperty("items").GetArrayLength());
        var top = Items(all.Body.GetProperty("items"));
        var r = await Get($"/v1/users/10/recommendations?k=5&exclude={top[0]},{top[2]},999999,x&exclude={top[4]}");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        var expected = _tiny.Ranking(_tiny.UserVector(0), 5, _tiny.Train[0].Concat(new[] { top[0], top[2], top[4] }.Select(_tiny.ItemIndex)));
        Assert.Equal(expected, Items(r.Body.GetProperty("items")));
    }

    [Theory]
    [InlineData("/v1/users/11/recommendations", "user '11'")]
    [InlineData("/v1/users/abc/recommendations", "user 'abc'")]
    [InlineData("/v1/users/010/recommendations", "user '010'")]
    [InlineData("/v1/items/101/similar", "item '101'")]
    [InlineData("/v1/items/+100/similar", "item '+100'")]
    public async Task An_unknown_id_is_404_naming_it(string url, string named)
    {
        var body = AssertProblem(await Get(url), HttpStatusCode.NotFound, named);
        Assert.Equal(named.Split('\'')[1], body.GetProperty("id").GetString());
    }

    [Theory]
    [InlineData("k=0")]
    [InlineData("k=-3")]
    [InlineData("k=51")]
    [InlineData("k=abc")]
    [InlineData("k=2.5")]
    [InlineData("k=")]
    [InlineData("k=99999999999999")]
    public async Task A_bad_k_is_400(string query)
    {
        AssertProblem(await Get("/v1/users/10/recommendations?" + query), HttpStatusCode.BadRequest, "k must be a whole number from 1 to 50");
        AssertProblem(await Get("/v1/items/100/similar?" + query), HttpStatusCode.BadRequest, "k must be a whole number from 1 to 50");
        AssertProblem(await Get("/v1/items/popular?" + query), HttpStatusCode.BadRequest, "k must be a whole number from 1 to 50");
    }

    [Fact]
    public async Task Query_mistakes_are_400_naming_them()
    {
        AssertProblem(await Get("/v1/users/10/recommendations?top=5"), HttpStatusCode.BadRequest, "unknown query parameter 'top' (this endpoint takes k, exclude)");
        AssertProblem(await Get("/v1/users/10/recommendations?k=5&k=6"), HttpStatusCode.BadRequest, "'k' is given 2 times");
        AssertProblem(await Get("/v1/users/10/recommendations?exclude=" + string.Join(",", Enumerable.Range(0, 7))), HttpStatusCode.BadRequest, "the most is 6");
        AssertProblem(await Post("/v1/recommendations?k=3", "{\"users\":[\"10\"]}"), HttpStatusCode.BadRequest, "takes no query parameters");
    }

    [Fact]
    public async Task A_batch_answers_each_user_in_order()
    {
        var r = await Post("/v1/recommendations", "{\"users\": [\"30\", \"10\", \"30\"], \"k\": 4}");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        var results = r.Body.GetProperty("results").EnumerateArray().ToArray();
        Assert.Equal(new[] { "30", "10", "30" }, results.Select(x => x.GetProperty("user").GetString()));
        foreach (var x in results)
        {
            int u = Array.IndexOf(_tiny.UserIds, x.GetProperty("user").GetString()!);
            Assert.Equal(_tiny.Ranking(_tiny.UserVector(u), 4, _tiny.Train[u]), Items(x.GetProperty("items")));
        }
        var single = await Get("/v1/users/30/recommendations?k=4");
        Assert.Equal(single.Body.GetProperty("items").GetRawText(), results[0].GetProperty("items").GetRawText());
        var defaultK = await Post("/v1/recommendations", "{\"users\": [\"10\"]}");
        Assert.Equal(20, defaultK.Body.GetProperty("results")[0].GetProperty("items").GetArrayLength());
    }

    [Fact]
    public async Task Batch_mistakes_are_problems()
    {
        AssertProblem(await Post("/v1/recommendations", "{\"users\": [\"10\", \"77\"]}"), HttpStatusCode.NotFound, "user '77'");
        AssertProblem(await Post("/v1/recommendations", "{\"users\": [\"10\",\"20\",\"30\",\"40\",\"50\",\"60\"]}"), (HttpStatusCode)413, "\"users\" has 6 ids; the most in one request is 5");
        AssertProblem(await Post("/v1/recommendations", "{\"users\": [\"10\"]}", "text/plain"), HttpStatusCode.UnsupportedMediaType, "application/json, not 'text/plain");
        AssertProblem(await Post("/v1/recommendations", "users=10", "application/x-www-form-urlencoded"), HttpStatusCode.UnsupportedMediaType, "application/json");
        AssertProblem(await Post("/v1/recommendations", "{\"users\": [\"10\"]"), HttpStatusCode.BadRequest, "not valid JSON");
        AssertProblem(await Post("/v1/recommendations", ""), HttpStatusCode.BadRequest, "the body is empty");
        AssertProblem(await Post("/v1/recommendations", "[\"10\"]"), HttpStatusCode.BadRequest, "must be a JSON object");
        AssertProblem(await Post("/v1/recommendations", "{\"users\": [10]}"), HttpStatusCode.BadRequest, "users[0] is 10: ids are strings");
        AssertProblem(await Post("/v1/recommendations", "{\"users\": []}"), HttpStatusCode.BadRequest, "\"users\" is empty");
        AssertProblem(await Post("/v1/recommendations", "{\"user\": [\"10\"]}"), HttpStatusCode.BadRequest, "unknown property \"user\"");
        AssertProblem(await Post("/v1/recommendations", "{\"k\": 3}"), HttpStatusCode.BadRequest, "\"users\" must be an array");
        AssertProblem(await Post("/v1/recommendations", "{\"users\": [\"10\"], \"k\": \"3\"}"), HttpStatusCode.BadRequest, "not \"3\"");
        AssertProblem(await Post("/v1/recommendations", "{\"users\": [\"10\"], \"k\": 0}"), HttpStatusCode.BadRequest, "from 1 to 50, not 0");
        var big = "{\"users\": [\"10\"], \"pad\": \"" + new string('x', 5000) + "\"}";
        AssertProblem(await Post("/v1/recommendations", big), (HttpStatusCode)413, "4096");
    }

    [Fact]
    public async Task From_items_folds_in_a_new_user()
    {
        var given = new[] { 2, 5, 11 };
        var ids = given.Select(i => _tiny.ItemIds[i].ToString()).ToArray();
        var r = await Post("/v1/recommendations/from-items", $"{{\"items\": [{string.Join(",", ids.Select(i => $"\"{i}\""))}], \"k\": 6}}");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        // The reference: ridge regression of score 1 on the given items with the library's λ (a multiple of the
        // mean squared item norm over the catalogue), solved independently (normal equations by Gauss-Jordan).
        var u = FoldInReference(given);
        Assert.Equal(_tiny.Ranking(u, 6, given), Items(r.Body.GetProperty("items")));
        Assert.DoesNotContain(Items(r.Body.GetProperty("items")), ids.Contains);
    }

    private float[] FoldInReference(int[] items)
    {
        int d = _tiny.Dim;
        double meanSquaredNorm = _tiny.Items.Select(x => (double)x * x).Sum() / (_tiny.Items.Length / d);
        var a = new double[d, d + 1];
        foreach (var i in items)
            for (int p = 0; p < d; p++)
            {
                a[p, d] += _tiny.Items[i * d + p];
                for (int q = 0; q < d; q++) a[p, q] += (double)_tiny.Items[i * d + p] * _tiny.Items[i * d + q];
            }
        for (int p = 0; p < d; p++) a[p, p] += Recommender.FoldInRegularization * meanSquaredNorm;
        for (int p = 0; p < d; p++)
        {
            double pivot = a[p, p];
            for (int q = 0; q <= d; q++) a[p, q] /= pivot;
            for (int r = 0; r < d; r++)
            {
                if (r == p) continue;
                double f = a[r, p];
                for (int q = 0; q <= d; q++) a[r, q] -= f * a[p, q];
            }
        }
        return Enumerable.Range(0, d).Select(p => (float)a[p, d]).ToArray();
    }

    [Fact]
    public async Task From_items_mistakes_are_problems()
    {
        AssertProblem(await Post("/v1/recommendations/from-items", "{\"items\": [\"100\", \"101\"]}"), HttpStatusCode.NotFound, "item '101'");
        AssertProblem(await Post("/v1/recommendations/from-items", "{\"items\": []}"), HttpStatusCode.BadRequest, "\"items\" is empty");
        AssertProblem(await Post("/v1/recommendations/from-items", "{\"items\": [\"100\",\"103\",\"106\",\"109\",\"112\",\"115\",\"118\"]}"), (HttpStatusCode)413, "the most in one request is 6");
        AssertProblem(await Post("/v1/recommendations/from-items", "{\"items\": [\"100\"]}", "text/csv"), HttpStatusCode.UnsupportedMediaType, "text/csv");
        AssertProblem(await Post("/v1/recommendations/from-items", "{\"items\": [\"100\"], \"users\": [\"10\"]}"), HttpStatusCode.BadRequest, "unknown property \"users\"");
    }

    [Fact]
    public async Task Similar_items_rank_by_inner_product_without_the_item()
    {
        for (int i = 0; i < _tiny.ItemIds.Length; i += 7)
        {
            var r = await Get($"/v1/items/{_tiny.ItemIds[i]}/similar?k=5");
            Assert.Equal(HttpStatusCode.OK, r.Status);
            Assert.Equal(_tiny.ItemIds[i].ToString(), r.Body.GetProperty("item").GetString());
            Assert.Equal(_tiny.Ranking(_tiny.ItemVector(i), 5, new[] { i }), Items(r.Body.GetProperty("items")));
        }
    }

    [Fact]
    public async Task Popular_items_are_counted_from_the_train_lists()
    {
        var r = await Get("/v1/items/popular?k=3");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        var counts = Enumerable.Range(0, _tiny.ItemIds.Length).Select(i => _tiny.Train.Count(t => t.Contains(i))).ToArray();
        var expected = Enumerable.Range(0, counts.Length).OrderByDescending(i => counts[i]).ThenBy(i => i).Take(3).ToArray();
        var items = r.Body.GetProperty("items");
        Assert.Equal(expected.Select(i => _tiny.ItemIds[i].ToString()), Items(items));
        Assert.Equal(counts[expected[0]], items[0].GetProperty("score").GetDouble());
    }

    [Fact]
    public async Task Health_reports_the_loaded_model()
    {
        var r = await Get("/health");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        Assert.Equal("ready", r.Body.GetProperty("status").GetString());
        var model = r.Body.GetProperty("model");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(_factory.Options.ModelPath))), model.GetProperty("sha256").GetString());
        Assert.Equal(40, model.GetProperty("items").GetInt32());
        Assert.Equal(8, model.GetProperty("users").GetInt32());
        Assert.Equal("exact", model.GetProperty("index").GetString());
    }

    [Fact]
    public async Task Metrics_count_requests_by_endpoint_and_status_in_prometheus_text()
    {
        await Get("/v1/users/10/recommendations?k=3");
        await Get("/v1/users/10/recommendations?k=3");
        await Get("/v1/users/nobody/recommendations");
        await Get("/no/such/path");
        // Routes that exist but do not take this method or content type: counted apart from unknown paths.
        using (var wrongMethod = await _client.GetAsync("/v1/recommendations"))
            Assert.Equal(HttpStatusCode.MethodNotAllowed, wrongMethod.StatusCode);
        using (var wrongType = await _client.PostAsync("/v1/recommendations", new StringContent("users=1", System.Text.Encoding.UTF8, "text/plain")))
            Assert.Equal(HttpStatusCode.UnsupportedMediaType, wrongType.StatusCode);
        using var response = await _client.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(response.Content.Headers.ContentType!.Parameters, p => p.Name == "version" && p.Value == "0.0.4");
        var text = await response.Content.ReadAsStringAsync();
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("recdistill_http_requests_total{endpoint=\"user_recommendations\",status=\"200\"} 2", lines);
        Assert.Contains("recdistill_http_requests_total{endpoint=\"user_recommendations\",status=\"404\"} 1", lines);
        Assert.Contains("recdistill_http_requests_total{endpoint=\"unmatched\",status=\"404\"} 1", lines);
        Assert.Contains("recdistill_http_requests_total{endpoint=\"rejected\",status=\"405\"} 1", lines);
        Assert.Contains("recdistill_http_requests_total{endpoint=\"rejected\",status=\"415\"} 1", lines);
        Assert.Contains("# TYPE recdistill_http_request_duration_seconds histogram", lines);
        // Buckets are cumulative and end in +Inf = count.
        var buckets = lines.Where(l => l.StartsWith("recdistill_http_request_duration_seconds_bucket{endpoint=\"user_recommendations\"", StringComparison.Ordinal))
            .Select(l => long.Parse(l[(l.LastIndexOf(' ') + 1)..])).ToArray();
        Assert.Equal(ServingMetrics.LatencyBounds.Length + 1, buckets.Length);
        Assert.Equal(buckets.Order(), buckets);
        Assert.Equal(3, buckets[^1]);
        Assert.Contains("recdistill_http_request_duration_seconds_count{endpoint=\"user_recommendations\"} 3", lines);
        var sha = Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(_factory.Options.ModelPath)));
        Assert.Contains(lines, l => l.StartsWith($"recdistill_model_info{{sha256=\"{sha}\"", StringComparison.Ordinal) && l.EndsWith(" 1", StringComparison.Ordinal));
        var loaded = lines.Single(l => l.StartsWith("recdistill_model_loaded_timestamp_seconds ", StringComparison.Ordinal));
        var when = DateTimeOffset.FromUnixTimeMilliseconds((long)(double.Parse(loaded.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture) * 1000));
        Assert.InRange(when, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Contains(lines, l => l.StartsWith("recdistill_model_load_duration_seconds ", StringComparison.Ordinal));
        Assert.Contains("recdistill_model_reloads_total{result=\"loaded\"} 1", lines);
        // Every sample line is NAME{labels} VALUE or NAME VALUE with a number.
        foreach (var l in lines.Where(l => !l.StartsWith('#')))
            Assert.Matches(@"^[a-z_]+(\{[a-z_0-9]+=""[^""]*""(,[a-z_0-9]+=""[^""]*"")*\})? [-+0-9.eE]+$", l);
    }

    [Fact]
    public async Task The_openapi_document_lists_every_endpoint()
    {
        var r = await Get("/openapi/v1.json");
        Assert.Equal(HttpStatusCode.OK, r.Status);
        var paths = r.Body.GetProperty("paths");
        foreach (var p in new[] { "/v1/users/{id}/recommendations", "/v1/recommendations", "/v1/recommendations/from-items",
                     "/v1/items/{id}/similar", "/v1/items/popular", "/health", "/metrics", "/admin/reload" })
            Assert.True(paths.TryGetProperty(p, out _), p + " is not in the document");
        var k = paths.GetProperty("/v1/users/{id}/recommendations").GetProperty("get").GetProperty("parameters")
            .EnumerateArray().Single(x => x.GetProperty("name").GetString() == "k");
        Assert.Equal("integer", k.GetProperty("schema").GetProperty("type").GetString());
        Assert.True(paths.GetProperty("/v1/recommendations").GetProperty("post").GetProperty("requestBody").GetProperty("content").TryGetProperty("application/json", out _));
    }

    [Fact]
    public async Task Unknown_routes_and_methods_are_problems()
    {
        AssertProblem(await Get("/v2/users/10/recommendations"), HttpStatusCode.NotFound, "no endpoint at /v2/users/10/recommendations");
        AssertProblem(await Send(_client, new HttpRequestMessage(HttpMethod.Delete, "/v1/users/10/recommendations")), HttpStatusCode.MethodNotAllowed, "DELETE");
    }

    [Fact]
    public async Task Reload_is_refused_to_a_client_that_is_not_on_loopback()
    {
        // The test host's requests carry no remote address, like a client the service cannot place; a
        // forwarding header marks a request relayed by a proxy. Neither may reload.
        AssertProblem(await Send(_client, new HttpRequestMessage(HttpMethod.Post, "/admin/reload")), HttpStatusCode.Forbidden, "loopback");
    }
}
