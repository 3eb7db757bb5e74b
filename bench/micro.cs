// Micro-benchmarks (BenchmarkDotNet) of the hot steps, each against its straightforward libtorch
// baseline in the same class, so BenchmarkDotNet's "Ratio" column is the speed-up:
//   optimizer step for one batch on a CiteULike-sized teacher table (30,400 x 200 rows):
//     row-sparse Adam on the ~4,000 touched rows  vs  torch's Adam (its plain tensor operations) on the dense gradient of the whole table
//   top-50 of one user batch (512 users x 25,181 items, d = 200):
//     TopKRanking (train items masked, bounded memory)  vs  bare matmul + topk
// Usage: dotnet run -c Release bench/micro.cs -- --filter '*' --inProcess   (--job short for a quick look, --job dry to check it runs)
#:project ../src/RecDistill/RecDistill.csproj
#:package BenchmarkDotNet@0.15.8
#:property JsonSerializerIsReflectionEnabledByDefault=true
#:property PublishAot=false
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using RecDistill.Evaluation;
using RecDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

BenchmarkSwitcher.FromTypes(new[] { typeof(OptimizerStep), typeof(BatchTopK) }).Run(args);

[MemoryDiagnoser]
public class OptimizerStep
{
    private const int Rows = 30_400, Dim = 200, Touched = 4_000;
    private Tensor _sparseTable = null!, _denseTable = null!, _rowIds = null!, _gradRows = null!, _denseGrad = null!;
    private RowSparseAdam _sparse = null!;
    private RecDistill.Training.DenseAdam _dense = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        manual_seed(1);
        using Scalar scale = 0.01;
        _sparseTable = randn(Rows, Dim).mul_(scale);
        var p = new TorchSharp.Modules.Parameter(randn(Rows, Dim).mul_(scale));
        _denseTable = p;
        _rowIds = randperm(Rows).narrow(0, 0, Touched).sort().Values;
        _gradRows = randn(Touched, Dim);
        _denseGrad = zeros(Rows, Dim).index_copy_(0, _rowIds, _gradRows);
        _sparse = new RowSparseAdam(_sparseTable, 1e-3, 1e-3);
        _dense = new RecDistill.Training.DenseAdam(new[] { p }, 1e-3, 1e-3, plain: true);
    }

    [Benchmark(Baseline = true, Description = "torch's Adam as plain tensor operations, dense gradient of the whole table")]
    public void DenseAdam()
    {
        _denseTable.grad = _denseGrad;
        _dense.Step();
    }

    [Benchmark(Description = "RowSparseAdam, touched rows only")]
    public void RowSparse() => _sparse.Step(_rowIds, _gradRows);
}

[MemoryDiagnoser]
public class BatchTopK
{
    private Tensor _users = null!, _items = null!;
    private int[][] _train = null!;

    [GlobalSetup]
    public void Setup()
    {
        torch.set_num_threads(1);
        manual_seed(2);
        _users = randn(512, 200);
        _items = randn(25_181, 200);
        var rng = new Random(3);
        _train = Enumerable.Range(0, 512).Select(_ => Enumerable.Range(0, 19).Select(_ => rng.Next(25_181)).Distinct().Order().ToArray()).ToArray();
    }

    [Benchmark(Baseline = true, Description = "bare matmul + topk (no masking)")]
    public long Bare()
    {
        using var _ = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var (_, idx) = _users.matmul(_items.t()).topk(50, dim: 1);
        return idx.shape[0];
    }

    [Benchmark(Description = "TopKRanking (train items masked)")]
    public long Ranked()
    {
        using var scope = torch.NewDisposeScope();
        return TopKRanking.Compute(_users, _items, _train, 50).shape[0];
    }
}
