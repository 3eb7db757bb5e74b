// Whole-epoch and evaluation speed of RecDistill against the straightforward libtorch way, each
// figure a ratio of two timings taken in this one run (same data, same batches, same threads).
//   BPR epoch:  row-sparse Adam on touched rows (ours)  vs  dense tables + plain-op Adam on dense gradients
//               (lazy mode, SPEC's protocol; and exact mode, which computes dense Adam's result)
//   MKD epoch:  NKD + CPD + SLD student epoch            vs  scratch student epoch (same trainer)
//   LightGCN epoch: fused CSR propagation (ours)         vs  libtorch sparse COO product (same trainer)
//   --converge: the BPR teachers trained to early stopping (SPEC protocol), best validation NDCG@20;
//               --converge-modes lazy,exact,dense picks which
//   evaluation: full ranking with train/valid masking and metrics (ours, user batches)
//               vs  one bare matmul of all users x all items + topk (no masking, no metrics)
// Usage: dotnet run -c Release bench/speed.cs -- [--data ../shared/data/citeulike-t/users.dat | none]
//          [--gowalla] [--epochs 8] [--threads 2] [--report results/perf/speed.md] [--smoke]
//          [--default-malloc] [--lightgcn-dim 64 (0: skip)] [--converge [--converge-modes lazy,exact,dense]]
#:project ../src/RecDistill/RecDistill.csproj
#:property JsonSerializerIsReflectionEnabledByDefault=true
using System.Diagnostics;
using System.Globalization;
using System.Text;
using RecDistill.Kernels;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Evaluation;
using RecDistill.Models;
using RecDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

string? Arg(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
bool smoke = args.Contains("--smoke");
// Epoch times settle after several epochs (tiered JIT); 8 timed epochs measure the steady state of runs of hundreds.
int epochs = int.Parse(Arg("--epochs") ?? (smoke ? "1" : "8"), CultureInfo.InvariantCulture);
int threads = int.Parse(Arg("--threads") ?? Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
var ompPolicy = RecDistill.Kernels.ThreadTuning.PreferSleepingWorkers(); // as the CLI does, before libtorch loads
// As the CLI does, unless --default-malloc: glibc keeps freed memory instead of unmapping it.
bool tunedMalloc = !args.Contains("--default-malloc") && RecDistill.Kernels.AllocatorTuning.KeepFreedMemory();
torch.set_num_threads(threads);
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;

var report = new StringBuilder();
void Line(string s) { Console.WriteLine(s); report.AppendLine(s); }
Line($"# RecDistill speed ({DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {threads} thread(s), {Environment.ProcessorCount} cores, {epochs} timed epoch(s) per figure after a warm-up epoch, {(tunedMalloc ? "malloc keeps freed memory" : "default malloc")}, OMP_WAIT_POLICY {ompPolicy ?? "unset"})");
Line("");

var sets = new List<(string Name, DataOptions Options, int TeacherDim)>();
if (smoke)
    sets.Add(("smoke", new DataOptions { Format = DataFormat.Synthetic, Synthetic = new SyntheticOptions { Users = 300, Items = 400, Seed = 1 } }, 16));
else
{
    var path = Arg("--data") ?? "../shared/data/citeulike-t/users.dat";
    if (path != "none" && File.Exists(path)) sets.Add(("citeulike", new DataOptions { Path = path, Format = DataFormat.Citeulike }, 200));
    if (args.Contains("--gowalla"))
        sets.Add(("gowalla-sized synthetic", new DataOptions
        {
            Format = DataFormat.Synthetic,
            Synthetic = new SyntheticOptions { Users = 30000, Items = 41000, AvgInteractionsPerUser = 34, Seed = 1 },
        }, 200));
}

var rows = new List<string[]>();
foreach (var (name, options, dT) in sets)
{
    var clock = Stopwatch.StartNew();
    var data = DatasetLoader.Load(options);
    Console.WriteLine($"{name}: {data.NumUsers} users, {data.NumItems} items, {data.TrainCount} train pairs (loaded in {clock.Elapsed.TotalSeconds:F1} s)");
    int dS = Math.Max(1, dT / 10);
    // One warm-up epoch (first-touch page faults, JIT tiers: once per process, not per epoch of a
    // run of hundreds), the timed epochs, and a last epoch that validates.
    var train = new TrainOptions { MaxEpochs = epochs + 2, EvalEvery = 1000, Patience = 1000, Seed = 1 };

    // BPR teacher epoch: the same trainer, row-sparse vs dense tables.
    (double EpochSeconds, double ValidNdcg) TimeTraining(IRecommender model, IDistillationMethod? method = null, TrainOptions? options = null)
    {
        var r = new Trainer(options ?? train).Fit(model, data, method);
        return (Median(r.History.Skip(1).Take(epochs).Select(h => h.Seconds)), r.BestValid.GetValueOrDefault("ndcg@20"));
    }
    manual_seed(1);
    using var sparse = new BprMf(data.NumUsers, data.NumItems, dT);
    var ours = TimeTraining(sparse);
    manual_seed(1);
    using var dense = new DenseBprMf(data.NumUsers, data.NumItems, dT);
    var baseline = TimeTraining(dense, options: train with { PlainAdam = true });
    manual_seed(1);
    using var sparseExact = new BprMf(data.NumUsers, data.NumItems, dT);
    var exact = TimeTraining(sparseExact, options: train with { SparseAdam = SparseAdamMode.Exact });
    rows.Add(new[] { name, $"BPR epoch, dim {dT}", F(ours.EpochSeconds), F(baseline.EpochSeconds), $"{baseline.EpochSeconds / ours.EpochSeconds:F1}x faster",
        $"valid NDCG@20 after {epochs + 2} epochs: {ours.ValidNdcg:F4} vs {baseline.ValidNdcg:F4}" });
    rows.Add(new[] { name, $"BPR epoch, dim {dT}, `--adam exact`", F(exact.EpochSeconds), F(baseline.EpochSeconds), $"{baseline.EpochSeconds / exact.EpochSeconds:F1}x faster",
        $"valid NDCG@20 after {epochs + 2} epochs: {exact.ValidNdcg:F4} vs {baseline.ValidNdcg:F4} (the same optimizer)" });

    // Evaluation of all users at the teacher's dim.
    var (users, items) = sparse.FinalEmbeddings();
    var evaluator = new FullRankingEvaluator(data);
    evaluator.Evaluate(users, items, EvalSplit.Test); // warm-up
    ResetPeakMemory();
    long before = CurrentRss();
    clock.Restart();
    evaluator.Evaluate(users, items, EvalSplit.Test);
    double evalSeconds = clock.Elapsed.TotalSeconds;
    long evalPeak = PeakRss() - before;
    ResetPeakMemory();
    before = CurrentRss();
    clock.Restart();
    using (torch.no_grad())
    using (var scope = torch.NewDisposeScope())
    {
        var (_, top) = users.matmul(items.t()).topk(50, dim: 1);
        top.sum().item<long>();
    }
    double bareSeconds = clock.Elapsed.TotalSeconds;
    long barePeak = PeakRss() - before;
    rows.Add(new[] { name, $"evaluate all users, dim {dT}", F(evalSeconds), F(bareSeconds), $"{evalSeconds / bareSeconds:F2}x the bare time",
        $"peak extra memory {Mb(evalPeak)} vs {Mb(barePeak)} (bare: users x items floats at once)" });

    // Student epochs: scratch vs MKD (setup: teacher top-K lists and neighbour search, once).
    using var teacher = FrozenTeacher.From(sparse);
    manual_seed(2);
    using var scratch = new BprMf(data.NumUsers, data.NumItems, dS);
    var scratchTime = TimeTraining(scratch);
    using var ctx = new DistillationContext(teacher, data, dS, CPU);
    clock.Restart();
    using var mkd = DistillationMethods.Create(DistillationOptions.Defaults("mkd", Backbone.Bpr), ctx)!;
    double setup = clock.Elapsed.TotalSeconds;
    manual_seed(2);
    using var student = new BprMf(data.NumUsers, data.NumItems, dS);
    var mkdTime = TimeTraining(student, mkd);
    rows.Add(new[] { name, $"MKD student epoch, dim {dS}", F(mkdTime.EpochSeconds), F(scratchTime.EpochSeconds), $"{mkdTime.EpochSeconds / scratchTime.EpochSeconds:F1}x the scratch epoch",
        $"one-off MKD setup {setup:F1} s" });

    // LightGCN epoch: the CSR propagation kernel vs libtorch's sparse COO product.
    int gcnDim = int.Parse(Arg("--lightgcn-dim") ?? (smoke ? "8" : "64"), CultureInfo.InvariantCulture);
    if (gcnDim > 0)
    {
        manual_seed(3);
        using var gcnCsr = new LightGcn(data.NumUsers, data.NumItems, gcnDim, 3, data.Train);
        var gcnOurs = TimeTraining(gcnCsr);
        manual_seed(3);
        using var gcnCoo = new LightGcn(data.NumUsers, data.NumItems, gcnDim, 3, data.Train, libtorchSparseProduct: true);
        var gcnBase = TimeTraining(gcnCoo);
        rows.Add(new[] { name, $"LightGCN epoch, dim {gcnDim}, 3 layers", F(gcnOurs.EpochSeconds), F(gcnBase.EpochSeconds), $"{gcnBase.EpochSeconds / gcnOurs.EpochSeconds:F1}x faster",
            $"valid NDCG@20 after {epochs + 2} epochs: {gcnOurs.ValidNdcg:F4} vs {gcnBase.ValidNdcg:F4}" });
    }

    if (args.Contains("--converge"))
    {
        // Both BPR teachers to early stopping under the SPEC protocol: the speed-up must not cost accuracy.
        var full = new TrainOptions { Seed = 1 };
        var modes = (Arg("--converge-modes") ?? "lazy,exact,dense").Split(',');
        var converged = new List<string>();
        foreach (var (mode, label, make, runOptions) in new (string, string, Func<IRecommender>, TrainOptions)[]
                 {
                     ("lazy", "row-sparse Adam", () => new BprMf(data.NumUsers, data.NumItems, dT), full),
                     ("exact", "row-sparse Adam, exact mode", () => new BprMf(data.NumUsers, data.NumItems, dT), full with { SparseAdam = SparseAdamMode.Exact }),
                     ("dense", "dense tables + plain-op Adam", () => new DenseBprMf(data.NumUsers, data.NumItems, dT), full with { PlainAdam = true }),
                 })
        {
            if (!modes.Contains(mode)) continue;
            manual_seed(1);
            using var model = make();
            clock.Restart();
            var r = new Trainer(runOptions).Fit(model, data);
            converged.Add($"{label}: best epoch {r.BestEpoch} of {r.History.Count}, valid NDCG@20 {r.BestValid.GetValueOrDefault("ndcg@20"):F4}, test NDCG@20 {evaluator.Evaluate(model, EvalSplit.Test)["ndcg@20"]:F4}, {clock.Elapsed.TotalSeconds:F0} s");
            Console.WriteLine(converged[^1]);
        }
        rows.Add(new[] { name, $"BPR teacher to early stopping, dim {dT}", "", "", "", string.Join("; ", converged) });
    }
}

Line("| data | figure | RecDistill (s) | baseline (s) | ratio | notes |");
Line("|---|---|---|---|---|---|");
foreach (var r in rows) Line("| " + string.Join(" | ", r) + " |");
Line("");
Line("Baselines: dense `nn.Embedding`-style tables updated by torch's Adam (as plain tensor operations) on dense gradients (same trainer, batches and seed);");
Line("for evaluation, one matmul of all users by all items and a top-50, without masking or metrics; for MKD, the scratch student.");
var reportPath = Arg("--report");
if (reportPath is not null)
{
    Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(reportPath))!);
    File.WriteAllText(reportPath, report.ToString());
    Console.WriteLine($"wrote {reportPath}");
}

static double Median(IEnumerable<double> xs) { var a = xs.Order().ToArray(); return a.Length == 0 ? double.NaN : a[a.Length / 2]; }
static string F(double s) => s.ToString("F3", CultureInfo.InvariantCulture);
// A peak below the starting point (memory freed meanwhile) is no extra memory, not "-0 MB".
static string Mb(long bytes) => $"{Math.Max(0, bytes) / 1048576.0:F0} MB";
// Linux: writing 5 to clear_refs resets the peak resident size (VmHWM) of the process.
static void ResetPeakMemory() { try { File.WriteAllText("/proc/self/clear_refs", "5"); } catch (IOException) { } catch (UnauthorizedAccessException) { } }
static long Status(string key)
{
    foreach (var l in File.ReadLines("/proc/self/status"))
        if (l.StartsWith(key + ":", StringComparison.Ordinal))
            return long.Parse(l[(key.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    return 0;
}
static long CurrentRss() => Status("VmRSS");
static long PeakRss() => Status("VmHWM");

/// <summary>The baseline: BPR-MF whose lookups give dense gradients over whole tables (as nn.Embedding), so the trainer uses plain-op Adam on them.</summary>
sealed class DenseBprMf(int users, int items, int dim) : EmbeddingModel(users, items, dim, BprMf.DefaultInitStd, CPU)
{
    public override Backbone Backbone => Backbone.Bpr;
    public override bool RowSparse => false;
    public override EmbeddingLookup Lookup(Tensor userIds, Tensor itemIds) => EmbeddingLookup.Dense(UserWeight, ItemWeight);
    public override (Tensor Users, Tensor Items) FinalEmbeddings()
    {
        using var _ = torch.no_grad();
        return (UserWeight.detach().clone(), ItemWeight.detach().clone());
    }
}
