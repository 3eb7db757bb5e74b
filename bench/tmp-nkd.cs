#:project ../src/RecDistill/RecDistill.csproj
using System.Diagnostics; using RecDistill; using RecDistill.Distillation;
using TorchSharp; using static TorchSharp.torch;
AllocatorTuning.KeepFreedMemory(); torch.set_num_threads(1);
var users = randn(5219, 200); var items = randn(25181, 200);
var uid = randint(0, 5219, 1700); var iid = randint(0, 25181, 3800);
var nuid = randint(0, 5219, 1700); var niid = randint(0, 25181, 3800);
var sw = new Stopwatch();
for (int rep = 0; rep < 60; rep++) {
  using var scope = NewDisposeScope();
  var p0 = randn(5500, 200).requires_grad_(true);
  sw.Restart();
  var p = nn.functional.normalize(p0, p: 2, dim: -1);
  var te = cat(new[]{ users.index_select(0, uid), items.index_select(0, iid) });
  var tn = cat(new[]{ users.index_select(0, nuid), items.index_select(0, niid) });
  var r = CounterRandom.Uniform(te.shape, 1.0, CPU);
  var mixed = r * te + (1 - r) * tn;
  var weight = full(5500, 0.5f); weight.narrow(0, 0, 1700).fill_(1);
  var dist = 1 - nn.functional.cosine_similarity(mixed, p, dim: 1);
  var loss = (dist * weight).sum() * 0.5;
  var t1 = sw.Elapsed.TotalMilliseconds;
  loss.backward();
  var t2 = sw.Elapsed.TotalMilliseconds;
  if (rep >= 5) Console.Write($"f {t1:F1} b {t2 - t1:F1} rss {Environment.WorkingSet >> 20}; ");
}
