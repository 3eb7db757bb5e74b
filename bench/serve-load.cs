// Load on a running `recdistill serve` over real sockets: GET /v1/users/{id}/recommendations?k=K from
// C concurrent clients (one HttpClient, keep-alive, at most C connections), for each C given. Each level is
// bounded in count (--requests) and time (--seconds) and preceded by a warm-up; users are the model's own, in
// a seeded random order. Reports throughput (requests/s) and latency p50/p99 per level; every answer must be
// 200 with k items. The server must already listen (start it with `recdistill serve --model FILE`); only
// loopback URLs are accepted.
// Usage: dotnet run -c Release bench/serve-load.cs -- --url http://127.0.0.1:8080 --model student.rdm
//        [--concurrency 1,8,64] [--requests 20000] [--seconds 20] [--warmup 500] [--k 20] [--out FILE]
#:project ../src/RecDistill.Serving/RecDistill.Serving.csproj
#:property JsonSerializerIsReflectionEnabledByDefault=true
#:property PublishAot=false
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.Json;
using RecDistill.Serving;

var inv = CultureInfo.InvariantCulture;
string? url = null, modelFile = null, outFile = null;
int[] levels = { 1, 8, 64 };
int requests = 20000, warmup = 500, k = 20;
double seconds = 20;
for (int a = 0; a < args.Length; a++)
{
    switch (args[a])
    {
        case "--url": url = args[++a].TrimEnd('/'); break;
        case "--model": modelFile = args[++a]; break;
        case "--concurrency": levels = args[++a].Split(',').Select(s => int.Parse(s, inv)).ToArray(); break;
        case "--requests": requests = int.Parse(args[++a], inv); break;
        case "--seconds": seconds = double.Parse(args[++a], inv); break;
        case "--warmup": warmup = int.Parse(args[++a], inv); break;
        case "--k": k = int.Parse(args[++a], inv); break;
        case "--out": outFile = args[++a]; break;
        default: Console.Error.WriteLine($"unknown argument {args[a]}"); return 2;
    }
}
if (url is null || modelFile is null) { Console.Error.WriteLine("usage: serve-load.cs --url http://127.0.0.1:PORT --model FILE [--concurrency 1,8,64] [--requests N] [--seconds S]"); return 2; }
var host = new Uri(url).Host;
if (!(host == "localhost" || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip))))
{
    Console.Error.WriteLine($"{url}: this benchmark only drives a server on loopback");
    return 2;
}

var rng = new Random(1);
var users = CompactModel.Load(modelFile).UserIds.OrderBy(_ => rng.Next()).ToArray();
int maxLevel = levels.Max();
using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = maxLevel, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
{
    BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(30),
};
string health = await client.GetStringAsync("/health");
Console.WriteLine($"server {url}: {health}");
Console.WriteLine($"client: .NET {Environment.Version}, {Environment.ProcessorCount} cores; {users.Length:N0} users; k={k}; per level at most {requests:N0} requests or {seconds} s after {warmup} warm-up requests");
Console.WriteLine();
Console.WriteLine("| concurrency | requests | seconds | requests/s | p50 ms | p99 ms | mean ms | max ms |");
Console.WriteLine("|---:|---:|---:|---:|---:|---:|---:|---:|");

var rows = new List<object>();
long cursor = 0;
foreach (int c in levels)
{
    await Run(c, warmup, double.MaxValue); // warm-up: connections opened, server and client JIT-compiled
    var (latencies, elapsed) = await Run(c, requests, seconds);
    Array.Sort(latencies);
    double p50 = Percentile(latencies, 0.50), p99 = Percentile(latencies, 0.99);
    double rate = latencies.Length / elapsed;
    Console.WriteLine($"| {c} | {latencies.Length:N0} | {elapsed:F1} | {rate:F0} | {p50:F3} | {p99:F3} | {latencies.Average():F3} | {latencies[^1]:F3} |");
    rows.Add(new { concurrency = c, requests = latencies.Length, seconds = elapsed, requestsPerSecond = rate, p50Ms = p50, p99Ms = p99, meanMs = latencies.Average(), maxMs = latencies[^1] });
}
if (outFile is not null)
{
    File.WriteAllText(outFile, JsonSerializer.Serialize(new
    {
        benchmark = "bench/serve-load.cs",
        command = "dotnet run -c Release bench/serve-load.cs -- " + string.Join(' ', args),
        endpoint = $"GET /v1/users/{{id}}/recommendations?k={k}",
        server = JsonDocument.Parse(health).RootElement,
        client = new { dotnet = Environment.Version.ToString(), cores = Environment.ProcessorCount },
        levels = rows,
    }, new JsonSerializerOptions { WriteIndented = true }) + "\n");
    Console.WriteLine($"\nwrote {outFile}");
}
return 0;

// c workers share a budget of n requests and a deadline; returns each request's latency (ms) and the wall time.
async Task<(double[] Latencies, double Seconds)> Run(int c, int n, double limitSeconds)
{
    long issued = 0;
    var perWorker = new List<double>[c];
    var clock = Stopwatch.StartNew();
    var workers = Enumerable.Range(0, c).Select(w => Task.Run(async () =>
    {
        var mine = perWorker[w] = new List<double>();
        while (Interlocked.Increment(ref issued) <= n && clock.Elapsed.TotalSeconds < limitSeconds)
        {
            var user = users[Interlocked.Increment(ref cursor) % users.Length];
            long t0 = Stopwatch.GetTimestamp();
            using var response = await client.GetAsync($"/v1/users/{user}/recommendations?k={k}");
            var body = await response.Content.ReadAsByteArrayAsync();
            mine.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
            if (response.StatusCode != HttpStatusCode.OK)
                throw new InvalidOperationException($"user {user}: HTTP {(int)response.StatusCode}");
            if (mine.Count == 1)
            {
                using var doc = JsonDocument.Parse(body);
                int got = doc.RootElement.GetProperty("items").GetArrayLength();
                if (got != k) throw new InvalidOperationException($"user {user}: {got} items, expected {k}");
            }
        }
    })).ToArray();
    await Task.WhenAll(workers);
    return (perWorker.SelectMany(l => l).ToArray(), clock.Elapsed.TotalSeconds);
}

static double Percentile(double[] sorted, double q) => sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
