#:project ../../src/RecDistill/RecDistill.csproj
using System.Diagnostics;
using RecDistill.Data;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;
torch.set_num_threads(2);
var data = DatasetLoader.Load(new DataOptions { Path = "/work/shared/data/citeulike-t/users.dat", Format = DataFormat.Citeulike });
using var g = new LightGcn(data.NumUsers, data.NumItems, 64, 3, data.Train);
var ids = torch.arange(10);
for (int rep = 0; rep < 3; rep++) {
  var sw = Stopwatch.StartNew();
  for (int k = 0; k < 10; k++) {
    using var scope = torch.NewDisposeScope();
    var l = g.Lookup(ids, ids);
    var loss = l.Users(ids).sum() + l.Items(ids).sum();
    if (k == 0 && rep == 0) Console.WriteLine("fwd ok");
    loss.backward();
  }
  Console.WriteLine($"fwd+bwd per step {sw.Elapsed.TotalMilliseconds / 10:F1} ms");
  sw.Restart();
  for (int k = 0; k < 10; k++) { using var scope = torch.NewDisposeScope(); using var _ = torch.no_grad(); var l = g.Lookup(ids, ids); }
  Console.WriteLine($"fwd only per step {sw.Elapsed.TotalMilliseconds / 10:F1} ms");
}
