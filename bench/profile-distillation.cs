// Per-batch cost of each distillation method on CiteULike (1 thread), split into id collection,
// lookup, loss and backward, plus each method's one-off setup and per-epoch step (first epoch, which
// may fill caches, and second).
// Usage: dotnet run bench/profile-distillation.cs -- ../shared/data/citeulike-t/users.dat TEACHER_RUN_DIR scratch sld nkd cpd mkd
// Environment: PROFILE_BATCHES (default 20; batches cycle through the epoch), PROFILE_THREADS (default 1).
#:project ../src/RecDistill/RecDistill.csproj
#:property JsonSerializerIsReflectionEnabledByDefault=true
using System.Diagnostics;
using RecDistill.Kernels;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Training;
using RecDistill;
using TorchSharp;
using static TorchSharp.torch;
AllocatorTuning.KeepFreedMemory(); // as the CLI does
torch.set_num_threads(int.TryParse(Environment.GetEnvironmentVariable("PROFILE_THREADS"), out var thr) ? thr : 1);
var data = DatasetLoader.Load(new DataOptions { Path = args[0], Format = DataFormat.Citeulike });
using var teacher = FrozenTeacher.Load(Path.Combine(args[1], ModelFile.FileName), data, CPU);
using Scalar unitAlpha = 1; // held for the whole run (an implicit alpha could be freed mid-call)
using var ctx = new DistillationContext(teacher, data, 20, CPU);
var sw = Stopwatch.StartNew();
ctx.TeacherTopK(100); Console.WriteLine($"teacher top-100: {sw.ElapsedMilliseconds} ms");
int nb = int.TryParse(Environment.GetEnvironmentVariable("PROFILE_BATCHES"), out var nbEnv) ? nbEnv : 20;
foreach (var m in args.Skip(2)) {
  sw.Restart();
  using var kd = DistillationMethods.Create(DistillationOptions.Defaults(m, Backbone.Bpr), ctx);
  Console.WriteLine($"{m} setup {sw.ElapsedMilliseconds} ms");
  using var student = new BprMf(data.NumUsers, data.NumItems, 20);
  var rng = new Random(1);
  sw.Restart(); kd?.OnEpochStart(1, student, rng); Console.WriteLine($"{m} epoch step {sw.ElapsedMilliseconds} ms");
  sw.Restart(); kd?.OnEpochStart(2, student, rng); Console.WriteLine($"{m} second epoch step {sw.ElapsedMilliseconds} ms");
  var s = new TrainingSampler(data).Sample(rng);
  // Per phase: the mean over the batches and the minimum (the figure to compare on a busy machine,
  // where other processes inflate the mean).
  var mean = new double[4]; var min = new double[] { 1e9, 1e9, 1e9, 1e9 }; var w = new Stopwatch();
  void Add(int phase) { double ms = w.Elapsed.TotalMilliseconds; mean[phase] += ms / nb; min[phase] = Math.Min(min[phase], ms); }
  for (int b = 0; b < nb; b++) {
    using var scope = torch.NewDisposeScope();
    int st = b % (s.Users.Length / 2048) * 2048;
    var batch = TrainingBatch.Slice(s, st, 2048, 1, b);
    w.Restart(); var (xu, xi) = kd?.ExtraIds(batch) ?? (null, null); Add(0);
    w.Restart();
    var items = xi is null ? torch.cat(new[]{batch.Positives, batch.Negatives.flatten()}) : torch.cat(new[]{batch.Positives, batch.Negatives.flatten(), xi.flatten()});
    var users = xu is null ? batch.Users : torch.cat(new[]{batch.Users, xu.flatten()});
    var look = student.Lookup(users, items); Add(1);
    w.Restart(); var loss = Trainer.BprLoss(look, batch); if (kd != null) loss = loss.add(kd.Loss(batch, look), unitAlpha); loss.item<float>(); Add(2);
    w.Restart(); loss.backward(); Add(3);
  }
  Console.WriteLine($"{m} per batch (mean / min of {nb}): ids {mean[0]:F1} / {min[0]:F1} ms, lookup {mean[1]:F1} / {min[1]:F1} ms, " +
                    $"loss {mean[2]:F1} / {min[2]:F1} ms, backward {mean[3]:F1} / {min[3]:F1} ms; total {mean.Sum():F1} / {min.Sum():F1} ms");
}
