using System.Net;
using System.Text.Json;

namespace RecDistill.Serving.Http.Tests;

/// <summary>Hot reload: a replaced file is served, a damaged one refused while the old model keeps serving.</summary>
public sealed class ReloadTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    private static async Task<string?> ServedSha(HttpClient client)
    {
        using var response = await client.GetAsync("/health");
        if (response.StatusCode != HttpStatusCode.OK) return null;
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("model").GetProperty("sha256").GetString();
    }

    private static string Sha(string path) => ModelAdapter.Checksums(File.ReadAllBytes(path)).Sha256;

    private static async Task<string[]> Top(HttpClient client, string user, int k)
    {
        using var response = await client.GetAsync($"/v1/users/{user}/recommendations?k={k}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("item").GetString()!).ToArray();
    }

    /// <summary>Replaces a file the way export does: a temporary file beside it, renamed over it.</summary>
    private static void ReplaceAtomically(string path, byte[] bytes)
    {
        var tmp = path + ".incoming";
        File.WriteAllBytes(tmp, bytes);
        File.Move(tmp, path, overwrite: true);
    }

    [Fact]
    public async Task An_atomically_replaced_file_is_served_and_a_damaged_one_refused()
    {
        var path = _dir.File("student.rdm");
        var first = new TinyModel(seed: 1);
        first.Write(path);
        var oldSha = Sha(path);
        using var factory = new ServingFactory(new ServingOptions { ModelPath = path, ReloadDelay = TimeSpan.FromMilliseconds(50) });
        using var client = factory.CreateClient();
        Assert.Equal(oldSha, await ServedSha(client));

        // A new model written over the old one (atomically, as export writes) is loaded and served.
        var second = new TinyModel(seed: 2);
        second.Model.Save(path);
        var newSha = Sha(path);
        Assert.NotEqual(oldSha, newSha);
        Assert.True(await Eventually.True(async () => await ServedSha(client) == newSha), "the new model was not loaded");
        Assert.Equal(second.Ranking(second.UserVector(0), 5, second.Train[0]), await Top(client, "10", 5));

        // A truncated file and a corrupt one (one byte changed) are refused; the served model stays.
        var good = File.ReadAllBytes(path);
        var store = (ModelStore)factory.Services.GetService(typeof(ModelStore))!;
        ReplaceAtomically(path, good[..(good.Length / 2)]);
        Assert.True(await Eventually.True(() => Task.FromResult(store.Refusals >= 1)), "the truncated file was not refused");
        var corrupt = (byte[])good.Clone();
        corrupt[^3] ^= 0x40;
        ReplaceAtomically(path, corrupt);
        Assert.True(await Eventually.True(() => Task.FromResult(store.Refusals >= 2)), "the corrupt file was not refused");
        Assert.Equal(newSha, await ServedSha(client));
        Assert.Equal(second.Ranking(second.UserVector(0), 5, second.Train[0]), await Top(client, "10", 5));
        using var metrics = await client.GetAsync("/metrics");
        var text = await metrics.Content.ReadAsStringAsync();
        Assert.Contains("recdistill_model_reloads_total{result=\"refused\"} 2", text);
        Assert.Contains($"sha256=\"{newSha}\"", text);
    }

    [Fact]
    public async Task Without_a_model_health_is_503_until_the_file_appears()
    {
        var path = _dir.File("later.rdm");
        using var factory = new ServingFactory(new ServingOptions { ModelPath = path, StartWithoutModel = true, ReloadDelay = TimeSpan.FromMilliseconds(50) });
        using var client = factory.CreateClient();
        using (var health = await client.GetAsync("/health"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, health.StatusCode);
            Assert.Contains("no model loaded", await health.Content.ReadAsStringAsync());
        }
        using (var query = await client.GetAsync("/v1/users/10/recommendations"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, query.StatusCode);
            Assert.Equal("application/problem+json", query.Content.Headers.ContentType?.MediaType);
        }
        var tiny = new TinyModel();
        tiny.Write(path);
        Assert.True(await Eventually.True(async () => await ServedSha(client) is not null), "the model that appeared was not loaded");
        // User "10" is dense user 0: its top-5 by brute force, its train items left out.
        Assert.Equal(tiny.Ranking(tiny.UserVector(0), 5, tiny.Train[0]), await Top(client, "10", 5));
    }

    [Theory]
    [InlineData(IndexKind.Exact)]
    [InlineData(IndexKind.Hnsw)]
    public void Requests_in_flight_finish_on_the_old_model(IndexKind index)
    {
        var path = _dir.File("m.rdm");
        var first = new TinyModel(seed: 1);
        first.Write(path);
        var options = new ServingOptions { ModelPath = path, Index = index, WatchFile = false };
        using var store = new ModelStore(options, ModelAdapter.Load(path, options));
        var inFlight = store.Acquire()!;
        var second = new TinyModel(seed: 2);
        second.Write(path);
        Assert.Equal(ReloadOutcome.Loaded, store.Reload("test").Outcome);
        Assert.Equal(ReloadOutcome.Unchanged, store.Reload("test again").Outcome);

        // The request that started before the swap still answers from the old model, whole.
        Assert.Equal(first.Ranking(first.UserVector(0), 6, first.Train[0]), inFlight.Model.Recommend("10", 6).Select(r => r.Item));
        using (var next = store.Acquire()!)
            Assert.Equal(second.Ranking(second.UserVector(0), 6, second.Train[0]), next.Model.Recommend("10", 6).Select(r => r.Item));
        var old = inFlight.Model;
        inFlight.Dispose(); // the last hold on the old model: it is released now
        if (index == IndexKind.Hnsw) Assert.Throws<ObjectDisposedException>(() => old.Recommend("10", 6));
        Assert.Equal(2, store.Loads);
    }

    [Fact]
    public void A_missing_file_is_refused_and_the_model_stays()
    {
        var path = _dir.File("gone.rdm");
        new TinyModel().Write(path);
        var options = new ServingOptions { ModelPath = path, WatchFile = false };
        using var store = new ModelStore(options, ModelAdapter.Load(path, options));
        var sha = store.Current!.Sha256;
        File.Delete(path);
        var result = store.Reload("test");
        Assert.Equal(ReloadOutcome.Refused, result.Outcome);
        Assert.Equal(sha, result.Model!.Sha256);
        Assert.Equal(sha, store.Current!.Sha256);
    }
}
