using System.Net;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;

namespace RecDistill.Serving.Http.Tests;

/// <summary>The service as `recdistill serve` builds it (<see cref="ServingHost.Build"/>), over a real Kestrel port on loopback.</summary>
public sealed class KestrelTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>A test-only endpoint that holds its request until released: a request in flight at shutdown.</summary>
    private sealed class SlowEndpoint(TaskCompletionSource entered, TaskCompletionSource release) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Map("/test/slow", slow => slow.Run(async http =>
            {
                entered.TrySetResult();
                await release.Task;
                await http.Response.WriteAsync("finished");
            }));
            next(app);
        };
    }

    [Fact]
    public async Task Serves_over_loopback_and_shuts_down_after_requests_in_flight()
    {
        var tiny = new TinyModel();
        var path = tiny.Write(_dir.File("student.rdm"));
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var options = new ServingOptions { ModelPath = path, Urls = "http://127.0.0.1:0", ShutdownTimeout = TimeSpan.FromSeconds(20) };
        await using var app = ServingHost.Build(options, b => b.Services.AddSingleton<IStartupFilter>(new SlowEndpoint(entered, release)));
        await app.StartAsync();
        var url = app.Urls.Single();
        Assert.StartsWith("http://127.0.0.1:", url);
        Assert.DoesNotContain(":0", url[^2..]);

        using (var client = new HttpClient { BaseAddress = new Uri(url) })
        {
            using var response = await client.GetAsync("/v1/users/20/recommendations?k=4");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            var items = doc.RootElement.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("item").GetString()).ToArray();
            Assert.Equal(tiny.Ranking(tiny.UserVector(1), 4, tiny.Train[1]), items);

            using var batch = await client.PostAsync("/v1/recommendations", new StringContent("{\"users\":[\"10\",\"20\"],\"k\":2}", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, batch.StatusCode);

            // Over a real socket the client is on loopback: reload is allowed (the file is unchanged).
            using var reload = await client.PostAsync("/admin/reload", null);
            Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
            Assert.Contains("\"outcome\":\"unchanged\"", await reload.Content.ReadAsStringAsync());
            using var relayed = new HttpRequestMessage(HttpMethod.Post, "/admin/reload");
            relayed.Headers.Add("X-Forwarded-For", "203.0.113.9");
            using var forbidden = await client.SendAsync(relayed);
            Assert.Equal(HttpStatusCode.Forbidden, forbidden.StatusCode);
        }

        // Graceful shutdown: a request in flight when stopping starts is answered; new connections are not accepted.
        using var slowClient = new HttpClient { BaseAddress = new Uri(url) };
        var slow = slowClient.GetAsync("/test/slow");
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        var stopping = app.StopAsync();
        await Task.Delay(300);
        Assert.False(stopping.IsCompleted, "the server stopped before its request in flight finished");
        using (var late = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(5) })
            await Assert.ThrowsAnyAsync<HttpRequestException>(() => late.GetAsync("/health"));
        release.SetResult();
        using var finished = await slow.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(HttpStatusCode.OK, finished.StatusCode);
        Assert.Equal("finished", await finished.Content.ReadAsStringAsync());
        await stopping.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_full_exclude_list_of_long_ids_fits_in_the_request_line()
    {
        var tiny = new TinyModel();
        var options = new ServingOptions { ModelPath = tiny.Write(_dir.File("student.rdm")), Urls = "http://127.0.0.1:0", WatchFile = false };
        await using var app = ServingHost.Build(options);
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };
        // 1000 UUID-like ids (the documented most) are about 37 KB of query, far over Kestrel's default 8 KiB line.
        // The user's best item is the last one, so that the answer shows the list was read to its end.
        string best = tiny.Ranking(tiny.UserVector(1), 1, tiny.Train[1])[0];
        var ids = Enumerable.Range(0, options.MaxItemList - 1).Select(i => new Guid(i, 0, 0, new byte[8]).ToString()).Append(best);
        using var response = await client.GetAsync($"/v1/users/20/recommendations?k=4&exclude={string.Join(',', ids)}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var items = doc.RootElement.GetProperty("items").EnumerateArray().Select(e => e.GetProperty("item").GetString()).ToArray();
        Assert.Equal(tiny.Ranking(tiny.UserVector(1), 4, [.. tiny.Train[1], tiny.ItemIndex(best)]), items);
        await app.StopAsync();
    }

    [Fact]
    public void A_damaged_model_file_fails_the_build_before_anything_listens()
    {
        var path = _dir.File("bad.rdm");
        var bytes = File.ReadAllBytes(new TinyModel().Write(path));
        File.WriteAllBytes(path, bytes[..100]);
        var e = Assert.Throws<RecDistill.Serving.CompactModelFormatException>(() => ServingHost.Build(new ServingOptions { ModelPath = path, Urls = "http://127.0.0.1:0" }));
        Assert.Contains("truncated", e.Message);
    }
}
