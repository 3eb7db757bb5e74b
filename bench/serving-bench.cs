// Serving cost of exported models, measured in one run: size on disk, load time, latency of one
// top-K query (over all items, train items left out) and single-thread throughput over all users.
// The first file is the reference (the teacher); every other file gets a "times better" ratio
// (reference / file for size and times, file / reference for throughput).
// Usage: dotnet run -c Release bench/serving-bench.cs -- TEACHER.rdm STUDENT.rdm [MORE.rdm ...] [--k 20] [--queries 3000]
#:project ../src/RecDistill.Serving/RecDistill.Serving.csproj
using System.Diagnostics;
using System.Globalization;
using System.Runtime.Intrinsics;
using RecDistill.Serving;

var files = new List<string>();
int k = 20, queries = 3000, loads = 5;
for (int a = 0; a < args.Length; a++)
{
    if (args[a] == "--k") k = int.Parse(args[++a], CultureInfo.InvariantCulture);
    else if (args[a] == "--queries") queries = int.Parse(args[++a], CultureInfo.InvariantCulture);
    else if (args[a] == "--loads") loads = int.Parse(args[++a], CultureInfo.InvariantCulture);
    else files.Add(args[a]);
}
if (files.Count < 2) { Console.Error.WriteLine("usage: serving-bench.cs TEACHER.rdm STUDENT.rdm [MORE.rdm ...] [--k 20] [--queries 3000] [--loads 5]"); return 2; }

var results = new List<Result>();
var models = new List<Recommender>();
foreach (var f in files)
{
    long size = new FileInfo(f).Length;
    // Load: one warm-up (page cache, JIT), then the median of `loads` timed loads.
    Recommender.Load(f);
    var loadMs = new List<double>();
    Recommender rec = null!;
    for (int i = 0; i < loads; i++)
    {
        GC.Collect(); GC.WaitForPendingFinalizers();
        var t0 = Stopwatch.GetTimestamp();
        rec = Recommender.Load(f);
        loadMs.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
    }
    var m = rec.Model;
    var rng = new Random(1);
    var users = m.UserIds.ToArray();
    // Latency: warm-up queries, then each of `queries` random users timed on its own.
    for (int i = 0; i < 300; i++) rec.Recommend(users[rng.Next(users.Length)], k);
    GC.Collect(); GC.WaitForPendingFinalizers();
    var lat = new double[queries];
    for (int i = 0; i < queries; i++)
    {
        string u = users[rng.Next(users.Length)];
        var t0 = Stopwatch.GetTimestamp();
        var r = rec.Recommend(u, k);
        lat[i] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
        if (r.Count == 0) throw new InvalidOperationException("empty answer");
    }
    Array.Sort(lat);
    // Throughput: every user once through the batch API on one thread (after a warm-up batch),
    // and every user once as a single query.
    rec.RecommendBatch(users[..Math.Min(256, users.Length)], k);
    GC.Collect(); GC.WaitForPendingFinalizers();
    var tb = Stopwatch.GetTimestamp();
    rec.RecommendBatch(users, k);
    double batchSec = Stopwatch.GetElapsedTime(tb).TotalSeconds;
    var ts = Stopwatch.GetTimestamp();
    foreach (var u in users) rec.Recommend(u, k);
    double singleSec = Stopwatch.GetElapsedTime(ts).TotalSeconds;
    results.Add(new Result(Path.GetFileName(f), $"{m.Backbone} d={m.Dim} {m.Precision}".ToLowerInvariant(), size, Median(loadMs),
        Pct(lat, 0.50), Pct(lat, 0.99), lat.Average(), users.Length / batchSec, users.Length / singleSec, m));
    models.Add(rec);
    Console.Error.WriteLine($"measured {f}");
}

string G(double v, string fmt) => v.ToString(fmt, CultureInfo.InvariantCulture);
Console.WriteLine($"Serving benchmark: top-{k} over all {results[0].Model.NumItems:N0} items, train items left out; " +
    $"{results[0].Model.NumUsers:N0} users; {queries} timed queries per model, load = median of {loads}.");
Console.WriteLine($".NET {Environment.Version}, {Environment.ProcessorCount} cores, {(Vector512.IsHardwareAccelerated ? "AVX-512" : Vector256.IsHardwareAccelerated ? "256-bit SIMD" : "no wide SIMD")}, one query thread.");
Console.WriteLine();
var header = new List<string> { "metric" };
header.AddRange(results.Select(r => $"{r.Name} ({r.Label})"));
header.AddRange(results.Skip(1).Select(r => $"{r.Name}: × better than {results[0].Name}"));
Console.WriteLine("| " + string.Join(" | ", header) + " |");
Console.WriteLine("|" + string.Concat(header.Select((_, i) => i == 0 ? "---|" : "---:|")));
void Row(string name, Func<Result, double> f, string fmt, bool higherIsBetter = false)
{
    var cells = new List<string> { name };
    cells.AddRange(results.Select(r => G(f(r), fmt)));
    // Ratios read "times better": reference / file for sizes and times, file / reference for throughput.
    cells.AddRange(results.Skip(1).Select(r => G(higherIsBetter ? f(r) / f(results[0]) : f(results[0]) / f(r), "F2") + "x"));
    Console.WriteLine("| " + string.Join(" | ", cells) + " |");
}
Row("size on disk (MiB)", r => r.Bytes / 1048576.0, "F2");
Row("load (ms)", r => r.LoadMs, "F1");
Row($"top-{k} query p50 (µs)", r => r.P50, "F1");
Row($"top-{k} query p99 (µs)", r => r.P99, "F1");
Row($"top-{k} query mean (µs)", r => r.Mean, "F1");
Row("throughput, batch API (users/s)", r => r.BatchUsersPerSec, "F0", higherIsBetter: true);
Row("throughput, single queries (users/s)", r => r.SingleUsersPerSec, "F0", higherIsBetter: true);

// Agreement of each fp16/int8 file with an fp32 file of the same shape (if one was given).
for (int i = 0; i < results.Count; i++)
{
    var q = results[i].Model;
    if (q.Precision == VectorPrecision.Fp32) continue;
    int j = results.FindIndex(r => r.Model.Precision == VectorPrecision.Fp32 && r.Model.Dim == q.Dim
        && r.Model.NumUsers == q.NumUsers && r.Model.NumItems == q.NumItems);
    if (j < 0) continue;
    var all = q.UserIds.ToArray();
    double overlap = RankingOverlap.Mean(models[j], models[i], all, k);
    Console.WriteLine();
    Console.WriteLine($"top-{k} overlap of {results[i].Name} with {results[j].Name} over all {all.Length:N0} users: {G(overlap, "F4")}");
}
return 0;

static double Median(List<double> xs) { var s = xs.Order().ToArray(); return s[s.Length / 2]; }
static double Pct(double[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)Math.Floor(p * sorted.Length))];

record Result(string Name, string Label, long Bytes, double LoadMs, double P50, double P99, double Mean,
    double BatchUsersPerSec, double SingleUsersPerSec, CompactModel Model);
