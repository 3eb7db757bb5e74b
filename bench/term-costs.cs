#:project ../src/RecDistill/RecDistill.csproj
#:property JsonSerializerIsReflectionEnabledByDefault=true
// Times one distillation method's loss terms on one CiteULike batch, forward and forward + backward,
// on one thread (or the THREADS given): minimum and mean over the steps after a warm-up (the warm-up lets the JIT finish).
// Usage: dotnet run -c Release bench/term-costs.cs -- METHOD [USERS_DAT] [TEACHER_MODEL] [WARMUP] [STEPS] [late] [THREADS,..]
// late (HTD): the selector biased towards three experts, as late in a run, where most rows go to two
// or three groups; THREADS: libtorch thread counts to time in turn (default 1).
// TERM_DIM=10 TERM_BACKBONE=lightgcn: a LightGCN student's width and the method's LightGCN defaults
// (the terms see looked-up vectors only, so the student stays a plain table).
// e.g.   dotnet run -c Release bench/term-costs.cs -- cpd ../shared/data/citeulike-t/users.dat runs/compare-citeulike-bpr/teacher/model.bin 40 60
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
torch.set_num_threads(1);
string method = args.Length > 0 ? args[0] : "cpd";
string dataPath = args.Length > 1 ? args[1] : "../shared/data/citeulike-t/users.dat";
string teacherPath = args.Length > 2 ? args[2] : "runs/compare-citeulike-bpr/teacher/model.bin";
int warmup = args.Length > 3 ? int.Parse(args[3]) : 40, steps = args.Length > 4 ? int.Parse(args[4]) : 60;

var data = DatasetLoader.Load(new DataOptions { Path = dataPath, Format = DataFormat.Citeulike });
using var teacher = FrozenTeacher.Load(teacherPath, data, CPU);
int dim = int.Parse(Environment.GetEnvironmentVariable("TERM_DIM") ?? "20");
var backbone = Environment.GetEnvironmentVariable("TERM_BACKBONE") == "lightgcn" ? Backbone.LightGcn : Backbone.Bpr;
using var ctx = new DistillationContext(teacher, data, dim, CPU);
manual_seed(7);
using var m = DistillationMethods.Create(DistillationOptions.Defaults(method, backbone), ctx)
              ?? throw new ArgumentException($"{method} has no loss terms to time");
using var student = new BprMf(data.NumUsers, data.NumItems, dim);
var rng = new Random(3);
bool late = args.Length > 5 && args[5] == "late";
m.OnEpochStart(late ? 300 : 1, student, rng);
if (late)
{
    var htd = m as HierarchicalTopologyDistillation ?? throw new ArgumentException("late applies to htd");
    using var noGrad = torch.no_grad();
    var bias = htd.Projector.named_parameters().First(p => p.name.EndsWith("bias") && p.parameter.shape.Length == 1).parameter;
    bias[0] = torch.tensor(4.0f); bias[1] = torch.tensor(3.8f); bias[2] = torch.tensor(2.8f);
}
var threadCounts = args.Length > 6 ? args[6].Split(',').Select(int.Parse).ToArray() : new[] { 1 };
var s = new TrainingSampler(data).Sample(rng, 1);
int n = 2048;
var batch = TrainingBatch.Slice(s, 0, n, 1, 0);
var lookup = Trainer.Lookup(student, batch, m);

void Time(string name, Action step)
{
    for (int w = 0; w < warmup; w++) { using var scope = torch.NewDisposeScope(); step(); }
    double best = double.MaxValue, sum = 0;
    var clock = new Stopwatch();
    for (int k = 0; k < steps; k++)
    {
        using var scope = torch.NewDisposeScope();
        clock.Restart();
        step();
        double ms = clock.Elapsed.TotalMilliseconds;
        sum += ms; best = Math.Min(best, ms);
    }
    Console.WriteLine($"{name}: min {best:F2} ms, mean {sum / steps:F2} ms");
}

foreach (int threads in threadCounts)
{
    torch.set_num_threads(threads);
    string on = threadCounts.Length > 1 ? $" ({threads} threads)" : "";
    foreach (var term in m.Terms(batch))
    {
        Time($"{term.Name} forward{on}", () => term.Loss(lookup.WithOwnLeaves()).item<float>());
        Time($"{term.Name} forward + backward{on}", () =>
        {
            term.Loss(lookup.WithOwnLeaves()).backward();
            foreach (var p in m.Parameters) p.grad?.zero_();
        });
    }
}
