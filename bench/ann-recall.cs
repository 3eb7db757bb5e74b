// Approximate (USearch HNSW, inner product) against exact top-K on a synthetic catalogue, through the
// service's own query path (RecDistill.Serving.Http's ModelAdapter: exact = RecDistill.Serving's Recommender,
// hnsw = graph candidates rescored exactly). Reports recall@K of the HNSW lists against the exact ones and
// the speed-up of one query, for several candidate counts, plus the graph's build time and memory.
// Synthetic data (seeded): item vectors = one of C cluster centres (N(0, 1/d) per value) + N(0, 0.5²/d)
// noise, scaled by a log-normal popularity factor (σ = 0.3); each query user = a mix of two centres + noise.
// Optionally also a real exported model (--model FILE: its first --queries users).
// Usage: dotnet run -c Release bench/ann-recall.cs -- [--items 1000000] [--dim 20] [--queries 1000] [--k 20]
//        [--candidates 32,64,128,256] [--model FILE] [--out results.json]
#:project ../src/RecDistill.Serving.Http/RecDistill.Serving.Http.csproj
#:property JsonSerializerIsReflectionEnabledByDefault=true
#:property PublishAot=false
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using RecDistill.Serving;
using RecDistill.Serving.Http;

var inv = CultureInfo.InvariantCulture;
int items = 1_000_000, dim = 20, queries = 1000, k = 20, clusters = 1024;
int[] candidateCounts = { 32, 64, 128, 256 };
string? modelFile = null, outFile = null;
for (int a = 0; a < args.Length; a++)
{
    switch (args[a])
    {
        case "--items": items = int.Parse(args[++a], inv); break;
        case "--dim": dim = int.Parse(args[++a], inv); break;
        case "--queries": queries = int.Parse(args[++a], inv); break;
        case "--k": k = int.Parse(args[++a], inv); break;
        case "--candidates": candidateCounts = args[++a].Split(',').Select(s => int.Parse(s, inv)).ToArray(); break;
        case "--model": modelFile = args[++a]; break;
        case "--out": outFile = args[++a]; break;
        default: Console.Error.WriteLine($"unknown argument {args[a]}"); return 2;
    }
}

var report = new List<object>();
Console.WriteLine($".NET {Environment.Version}, {Environment.ProcessorCount} cores; k={k}, {queries} queries");
if (modelFile is not null)
    report.Add(Measure($"{Path.GetFileName(modelFile)}", CompactModel.Load(modelFile), queries));
report.Add(Measure($"synthetic {items:N0} items, d={dim}", Synthetic(items, dim, queries, clusters, seed: 1), queries));
if (outFile is not null)
{
    var json = JsonSerializer.Serialize(new
    {
        benchmark = "bench/ann-recall.cs",
        command = "dotnet run -c Release bench/ann-recall.cs -- " + string.Join(' ', args),
        dotnet = Environment.Version.ToString(),
        cores = Environment.ProcessorCount,
        k, queries,
        results = report,
    }, new JsonSerializerOptions { WriteIndented = true });
    File.WriteAllText(outFile, json + "\n");
    Console.WriteLine($"wrote {outFile}");
}
return 0;

object Measure(string name, CompactModel model, int n)
{
    Console.WriteLine($"\n{name}: {model.NumItems:N0} items, d={model.Dim}, {model.NumUsers:N0} users");
    var users = model.UserIds.Take(n).ToArray();
    var exactOptions = new ServingOptions { ModelPath = name };
    using var exact = ModelAdapter.Create(model, exactOptions);
    foreach (var u in users.Take(50)) exact.Recommend(u, k); // warm-up (JIT, caches)
    var truth = new HashSet<string>[users.Length];
    var exactMs = new double[users.Length];
    for (int j = 0; j < users.Length; j++)
    {
        long t0 = Stopwatch.GetTimestamp();
        truth[j] = exact.Recommend(users[j], k).Select(r => r.Item).ToHashSet();
        exactMs[j] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
    }
    double exactMedian = Median(exactMs);
    Console.WriteLine($"exact: median {exactMedian:F3} ms, mean {exactMs.Average():F3} ms per query");

    long before = GC.GetTotalMemory(true);
    long rssBefore = Process.GetCurrentProcess().WorkingSet64;
    long b0 = Stopwatch.GetTimestamp();
    using var approx = ModelAdapter.Create(model, exactOptions with { Index = IndexKind.Hnsw });
    double buildSeconds = Stopwatch.GetElapsedTime(b0).TotalSeconds;
    long rssAfter = Process.GetCurrentProcess().WorkingSet64;
    Console.WriteLine($"hnsw (M=16, efConstruction=128): built in {buildSeconds:F1} s; resident memory +{(rssAfter - rssBefore) / 1048576.0:F0} MiB (graph and the adapter's own vector copy)");
    var rows = new List<object>();
    Console.WriteLine($"| candidates | recall@{k} | median ms | mean ms | speed-up (median) |");
    Console.WriteLine("|---:|---:|---:|---:|---:|");
    foreach (int c in candidateCounts)
    {
        approx.Candidates = c;
        foreach (var u in users.Take(50)) approx.Recommend(u, k);
        var ms = new double[users.Length];
        double hits = 0;
        for (int j = 0; j < users.Length; j++)
        {
            long t0 = Stopwatch.GetTimestamp();
            var list = approx.Recommend(users[j], k);
            ms[j] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            hits += list.Count(r => truth[j].Contains(r.Item)) / (double)Math.Max(1, truth[j].Count);
        }
        double recall = hits / users.Length, median = Median(ms);
        Console.WriteLine($"| {c} | {recall:F4} | {median:F3} | {ms.Average():F3} | {exactMedian / median:F1}x |");
        rows.Add(new { candidates = c, recall, medianMs = median, meanMs = ms.Average(), speedup = exactMedian / median });
    }
    GC.KeepAlive(before);
    return new { name, items = model.NumItems, dim = model.Dim, exactMedianMs = exactMedian, exactMeanMs = exactMs.Average(), hnswBuildSeconds = buildSeconds, hnswResidentMiB = (rssAfter - rssBefore) / 1048576.0, hnsw = rows };
}

static double Median(double[] v)
{
    var s = v.Order().ToArray();
    return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
}

static CompactModel Synthetic(int items, int dim, int users, int clusters, int seed)
{
    var rng = new Random(seed);
    double Normal() => Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
    float scale = (float)(1 / Math.Sqrt(dim));
    var centres = new float[clusters * dim];
    for (int j = 0; j < centres.Length; j++) centres[j] = (float)Normal() * scale;
    var itemVectors = new float[(long)items * dim];
    for (int i = 0; i < items; i++)
    {
        int c = rng.Next(clusters);
        float norm = (float)Math.Exp(0.3 * Normal());
        for (int p = 0; p < dim; p++) itemVectors[i * dim + p] = norm * (centres[c * dim + p] + 0.5f * scale * (float)Normal());
    }
    var userVectors = new float[users * dim];
    for (int u = 0; u < users; u++)
    {
        int c1 = rng.Next(clusters), c2 = rng.Next(clusters);
        for (int p = 0; p < dim; p++) userVectors[u * dim + p] = 3 * (0.7f * centres[c1 * dim + p] + 0.3f * centres[c2 * dim + p] + 0.3f * scale * (float)Normal());
    }
    var empty = Enumerable.Range(0, users).Select(_ => (IReadOnlyList<int>)Array.Empty<int>()).ToArray();
    return CompactModel.Create(ModelBackbone.Bpr, 0, dim, userVectors, itemVectors,
        Enumerable.Range(0, users).Select(u => u.ToString(CultureInfo.InvariantCulture)).ToArray(), Enumerable.Range(0, items).Select(i => i.ToString(CultureInfo.InvariantCulture)).ToArray(), empty, VectorPrecision.Fp32);
}
