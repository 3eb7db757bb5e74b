// Per-batch cost of each distillation method on CiteULike (1 thread), split into id collection,
// lookup, loss and backward, plus each method's one-off setup and per-epoch step (first epoch, which
// may fill caches, and second).
// Usage: dotnet run bench/profile-distillation.cs -- ../shared/data/citeulike-t/users.dat TEACHER_RUN_DIR scratch sld nkd cpd mkd
#:project ../src/RecDistill/RecDistill.csproj
#:property JsonSerializerIsReflectionEnabledByDefault=true
using System.Diagnostics;
using RecDistill.Data;
using RecDistill.Distillation;
using RecDistill.Models;
using RecDistill.Training;
using RecDistill;
using TorchSharp;
using static TorchSharp.torch;
AllocatorTuning.KeepFreedMemory(); // as the CLI does
torch.set_num_threads(1);
var data = DatasetLoader.Load(new DataOptions { Path = args[0], Format = DataFormat.Citeulike });
using var teacher = FrozenTeacher.Load(Path.Combine(args[1], ModelFile.FileName), data, CPU);
using var ctx = new DistillationContext(teacher, data, 20, CPU);
var sw = Stopwatch.StartNew();
ctx.TeacherTopK(100); Console.WriteLine($"teacher top-100: {sw.ElapsedMilliseconds} ms");
foreach (var m in args.Skip(2)) {
  sw.Restart();
  using var kd = DistillationMethods.Create(DistillationOptions.Defaults(m, Backbone.Bpr), ctx);
  Console.WriteLine($"{m} setup {sw.ElapsedMilliseconds} ms");
  using var student = new BprMf(data.NumUsers, data.NumItems, 20);
  var rng = new Random(1);
  sw.Restart(); kd?.OnEpochStart(1, student, rng); Console.WriteLine($"{m} epoch step {sw.ElapsedMilliseconds} ms");
  sw.Restart(); kd?.OnEpochStart(2, student, rng); Console.WriteLine($"{m} second epoch step {sw.ElapsedMilliseconds} ms");
  var s = new TrainingSampler(data).Sample(rng);
  double tIds = 0, tLookup = 0, tLoss = 0, tBwd = 0; var w = new Stopwatch();
  int nb = 10;
  for (int b = 0; b < nb; b++) {
    using var scope = torch.NewDisposeScope();
    int st = b * 2048;
    var batch = new TrainingBatch(tensor(s.Users[st..(st+2048)]), tensor(s.Positives[st..(st+2048)]), tensor(s.Negatives[st..(st+2048)]).view(2048,1), 1, b);
    w.Restart(); var (xu, xi) = kd?.ExtraIds(batch) ?? (null, null); tIds += w.Elapsed.TotalMilliseconds;
    w.Restart();
    var items = xi is null ? torch.cat(new[]{batch.Positives, batch.Negatives.flatten()}) : torch.cat(new[]{batch.Positives, batch.Negatives.flatten(), xi.flatten()});
    var users = xu is null ? batch.Users : torch.cat(new[]{batch.Users, xu.flatten()});
    var look = student.Lookup(users, items); tLookup += w.Elapsed.TotalMilliseconds;
    w.Restart(); var loss = Trainer.BprLoss(look, batch); if (kd != null) loss = loss + kd.Loss(batch, look); loss.item<float>(); tLoss += w.Elapsed.TotalMilliseconds;
    w.Restart(); loss.backward(); tBwd += w.Elapsed.TotalMilliseconds;
  }
  Console.WriteLine($"{m} per batch: ids {tIds/nb:F1} ms, lookup {tLookup/nb:F1} ms, loss {tLoss/nb:F1} ms, backward {tBwd/nb:F1} ms");
}
