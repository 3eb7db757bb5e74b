#:project ../../src/RecDistill/RecDistill.csproj
using System.Diagnostics;
using RecDistill.Data;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;
torch.set_num_threads(2);
var data = DatasetLoader.Load(new DataOptions { Path = "/work/shared/data/citeulike-t/users.dat", Format = DataFormat.Citeulike });
var adj = LightGcn.NormalizedAdjacency(data.NumUsers, data.NumItems, data.Train);
var idx = adj.SparseIndices; var vals = adj.SparseValues.unsqueeze(1);
var rows = idx[0].clone(); var cols = idx[1].clone();
long n = data.NumUsers + data.NumItems;
var e0 = new TorchSharp.Modules.Parameter(torch.randn(n, 64) * 0.1);
for (int rep = 0; rep < 3; rep++) {
  var sw = Stopwatch.StartNew();
  for (int k = 0; k < 10; k++) {
    using var scope = torch.NewDisposeScope();
    var e = (Tensor)e0; var sum = e;
    for (int l = 0; l < 3; l++) { e = torch.zeros(n, 64).index_add(0, rows, e.index_select(0, cols) * vals, 1.0); sum = sum + e; }
    (sum.narrow(0,0,10).sum()).backward();
  }
  Console.WriteLine($"gather-scatter fwd+bwd per step {sw.Elapsed.TotalMilliseconds / 10:F1} ms");
}
