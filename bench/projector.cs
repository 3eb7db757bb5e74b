// The projectors' cost, each figure a ratio measured in this run (minimum of N repetitions, which
// is the figure to compare on a busy machine):
//   1. Sgemm vs libtorch's matmul on the products of NKD's and CPD's experts (forward and backward shapes)
//      and of the selection net and HTD's topology (30-wide products, the d x d form);
//      with --cold, each call takes one of seven copies of its operands in turn and a 16 MB buffer is
//      written before it, so that the operands come from L3 as in a training run (where the products ran
//      at 29-115 GFLOP/s against 100-160 here warm); the figure is then the median, not the minimum.
//   2. one projector pass (forward, then backward of a linear loss) through ExpertMlp, the C# expert
//      function, vs the projector's libtorch path (one call chain per expert), for CPD's selection form
//      (30 experts, 20 -> 110 -> 200) and NKD's mean form (5 experts, 20 -> 100 -> 200, dropout 0.1).
// Methods are compiled fully optimised at once (TieredCompilation off), as in a long training run;
// otherwise the first shapes would be timed before the JIT's optimised tier.
// Usage: dotnet run -c Release bench/projector.cs -- [--threads 1] [--rows 5500] [--repeat 20] [--cold]
#:project ../src/RecDistill/RecDistill.csproj
#:property AllowUnsafeBlocks=true
#:property TieredCompilation=false
using System.Diagnostics;
using System.Globalization;
using RecDistill.Kernels;
using RecDistill;
using RecDistill.Distillation;
using TorchSharp;
using static TorchSharp.torch;

string? Arg(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
int threads = int.Parse(Arg("--threads") ?? "1", CultureInfo.InvariantCulture);
int rows = int.Parse(Arg("--rows") ?? "5500", CultureInfo.InvariantCulture); // distinct users + items of a CiteULike batch
int repeat = int.Parse(Arg("--repeat") ?? "20", CultureInfo.InvariantCulture);
bool cold = args.Contains("--cold");
const int Copies = 7; // cold: the calls take the copies in turn, each last used seven calls earlier
var evictor = new float[4 << 20];
AllocatorTuning.KeepFreedMemory();
torch.set_num_threads(threads);
if (!Sgemm.IsSupported) { Console.WriteLine("no AVX-512 here: the kernels do not run"); return; }
Console.WriteLine($"threads {threads}, rows {rows}, {(cold ? "median" : "minimum")} of {repeat}{(cold ? ", operands cold (L2 evicted, seven copies in turn)" : "")}");

// Writes 16 MB, four times the L2: the next call's operands come from L3.
void Evict()
{
    for (int i = 0; i < evictor.Length; i += 16) evictor[i] += 1f;
}

// Warm: the minimum of repeated calls on copy 0. Cold: the median of calls on the copies in turn, each after Evict.
double Time(Action<int> body)
{
    if (!cold) return Min(() => body(0));
    for (int w = 0; w < Copies; w++) body(w);
    var times = new List<double>();
    for (int r = 0; r < repeat; r++)
    {
        using var scope = NewDisposeScope();
        Evict();
        var sw = Stopwatch.StartNew();
        body(r % Copies);
        times.Add(sw.Elapsed.TotalMilliseconds);
    }
    times.Sort();
    return times[times.Count / 2];
}

double Min(Action body)
{
    for (int w = 0; w < 3; w++) body(); // warm-up (allocator, caches)
    double best = double.MaxValue;
    for (int r = 0; r < repeat; r++)
    {
        using var scope = NewDisposeScope();
        var sw = Stopwatch.StartNew();
        body();
        best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
    }
    return best;
}

Console.WriteLine("\n| product (m x k x n) | Sgemm | libtorch matmul | libtorch / Sgemm |");
Console.WriteLine("|---|---|---|---|");
int cpdRows = rows / 30; // one of CPD's 30 experts
foreach (var (m, k, n, transposedA, what) in new[]
{
    (rows, 20, 100, false, "NKD layer 1, one expert"), (rows, 500, 200, false, "NKD layer 2, five experts side by side"),
    (rows, 200, 500, false, "NKD backward: dH = G W2^T"), (500, rows, 200, true, "NKD backward: dW2 = H^T G"),
    (rows, 100, 20, false, "NKD backward: dX = dH W1^T"), (cpdRows, 20, 110, false, "CPD layer 1, one expert"),
    (cpdRows, 110, 200, false, "CPD layer 2, one expert"), (rows, 200, 30, false, "selection logits / HTD prototype cosines"),
    (200, rows, 30, true, "selection backward: dW = T^T dL"), (rows, 30, 200, false, "HTD prototype level: dS = dC P"),
    (200, rows, 200, true, "HTD d x d form: T^T S"),
})
{
    var a = Enumerable.Range(0, cold ? Copies : 1).Select(_ => transposedA ? randn(k, m) : randn(m, k)).ToArray();
    var b = Enumerable.Range(0, a.Length).Select(_ => randn(k, n)).ToArray();
    var c = Enumerable.Range(0, a.Length).Select(_ => empty(m, n)).ToArray();
    double ours = Time(i =>
    {
        unsafe
        {
            fixed (byte* ap = a[i].bytes, bp = b[i].bytes, cp = c[i].bytes)
                Sgemm.Multiply((float*)ap, transposedA ? 1 : k, transposedA ? m : 1, (float*)bp, n, 1, (float*)cp, m, k, n);
        }
    });
    double torchMs = Time(i => (transposedA ? a[i].t() : a[i]).matmul(b[i]).sum().item<float>());
    Console.WriteLine($"| {m} x {k} x {n}{(transposedA ? ", A transposed" : "")} ({what}) | {ours:F3} ms ({2.0 * m * k * n / ours / 1e6:F0} GFLOP/s) | {torchMs:F3} ms | {torchMs / ours:F1} |");
}

Console.WriteLine("\n| projector pass | ExpertMlp (C#) | libtorch path | libtorch / ExpertMlp |");
Console.WriteLine("|---|---|---|---|");
manual_seed(1);
foreach (var (name, experts, hidden, form, dropout) in new[]
{
    ("CPD/DE: 30 experts, selection", 30, 110, ExpertCombination.TeacherGumbelSelection, 0.0),
    ("NKD: 5 experts, mean, dropout 0.1", 5, 100, ExpertCombination.MeanNormalized, 0.1),
})
{
    using var projector = new ExpertProjector("p", 20, 200, experts, hidden, dropout, form);
    projector.train();
    var x = randn(rows, 20).requires_grad_(true);
    var t = randn(rows, 200);
    double Pass(bool kernel)
    {
        using var kernels = KernelSwitch.Use(kernel);
        return Min(() =>
        {
            var y = projector.forward(x, form == ExpertCombination.MeanNormalized ? null : t);
            (y * t).sum().backward();
        });
    }
    double ours = Pass(true), libtorch = Pass(false);
    Console.WriteLine($"| {name}, forward + backward | {ours:F1} ms | {libtorch:F1} ms | {libtorch / ours:F2} |");
}
