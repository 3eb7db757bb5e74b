#:project ../src/RecDistill/RecDistill.csproj
// One LightGCN batch (propagation, BPR loss, backward, DenseAdam step) with the gradients zeroed before
// the backward pass (torch's zero_grad, how DenseAdam did it before 94a636f) or dropped (DenseAdam.ZeroGrad),
// the two alternating in one process so that both see the same machine: minimum, 25th percentile and median.
// Usage: dotnet run -c Release bench/dense-step.cs -- [USERS_DAT] [DIM] [THREADS] [STEPS]
using System.Diagnostics;
using RecDistill.Kernels;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

RecDistill.Kernels.ThreadTuning.PreferSleepingWorkers();
RecDistill.Kernels.AllocatorTuning.KeepFreedMemory();
string dataPath = args.Length > 0 ? args[0] : "../shared/data/citeulike-t/users.dat";
int dim = args.Length > 1 ? int.Parse(args[1]) : 100;
torch.set_num_threads(args.Length > 2 ? int.Parse(args[2]) : 2);
int steps = args.Length > 3 ? int.Parse(args[3]) : 160;
var data = DatasetLoader.Load(new DataOptions { Path = dataPath, Format = DataFormat.Citeulike });
manual_seed(1);
using var model = new LightGcn(data.NumUsers, data.NumItems, dim, 3, data.Train);
var parameters = new List<TorchSharp.Modules.Parameter> { model.UserWeight, model.ItemWeight };
using var optimizer = new DenseAdam(parameters, 1e-3, 1e-3);
var samples = new TrainingSampler(data).Sample(new Random(3), 1);
const int n = 2048;
int batches = samples.Count / n;
var times = new Dictionary<string, List<double>> { ["zeroed"] = new(), ["dropped"] = new() };
for (int step = 0; step < steps; step++)
{
    string form = step % 2 == 0 ? "zeroed" : "dropped";
    int start = step % batches * n;
    using var scope = torch.NewDisposeScope();
    var batch = TrainingBatch.Slice(samples, start, n, 1, 0);
    var clock = Stopwatch.StartNew();
    if (form == "zeroed")
        using (torch.no_grad()) foreach (var p in parameters) { using var g = p.grad; g?.zero_(); }
    else optimizer.ZeroGrad();
    var lookup = Trainer.Lookup(model, batch, null);
    Trainer.BprLoss(lookup, batch).backward();
    optimizer.Step();
    clock.Stop();
    if (step >= 20) times[form].Add(clock.Elapsed.TotalMilliseconds);
}
foreach (var (form, t) in times)
{
    t.Sort();
    Console.WriteLine($"gradients {form}: min {t[0]:F2} p25 {t[t.Count / 4]:F2} median {t[t.Count / 2]:F2} ms per batch ({t.Count} batches)");
}
