using RecDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Training;

public class RowSparseAdamTests
{
    // d = 4 runs only the scalar tail of the in-place CPU update; 19 runs its SIMD body and a
    // tail; 600 rows with two threads split the rows into parallel chunks.
    [Theory]
    [InlineData(6, 4, 1)]
    [InlineData(6, 19, 1)]
    [InlineData(600, 19, 2)]
    public void Matches_dense_Adam_with_L2_when_every_row_is_touched(int rows, int dim, int threads)
    {
        using var _ = TestData.Threads(threads);
        CompareWithDenseAdam(rows, dim);
    }

    private static void CompareWithDenseAdam(int rows, int dim)
    {
        manual_seed(3);
        var init = randn(rows, dim);
        var sparseTable = init.clone();
        var sparse = new RowSparseAdam(sparseTable, lr: 0.01, weightDecay: 0.1);
        var reference = new ReferenceAdam(init, lr: 0.01, weightDecay: 0.1);
        var all = FixedScalars.Arange(rows, ScalarType.Int64, CPU);
        for (int step = 0; step < 5; step++)
        {
            var g = randn(rows, dim);
            sparse.Step(all, g);
            reference.Step(g);
        }
        Assert.True(reference.Matches(sparseTable, rtol: 1e-5, atol: 1e-6), $"max difference {reference.MaxDifference(sparseTable)}");
    }

    [Fact]
    public void Untouched_rows_stay_bit_identical()
    {
        var table = randn(5, 3);
        var before = table.clone();
        var opt = new RowSparseAdam(table, lr: 0.1, weightDecay: 0.01);
        opt.Step(tensor(new long[] { 1, 3 }), ones(2, 3));
        Assert.True(table[0].eq(before[0]).all().item<bool>());
        Assert.True(table[2].eq(before[2]).all().item<bool>());
        Assert.True(table[4].eq(before[4]).all().item<bool>());
        Assert.False(table[1].eq(before[1]).all().item<bool>());
        // Adam's first step moves each touched coordinate by about lr against the gradient.
        Assert.True(allclose(table[3], before[3] - FixedScalars.Of(0.1), atol: 1e-3));
    }

    // Exact mode against dense Adam on random row subsets: rows skipped for several steps, rows
    // never touched, the CPU kernel (SIMD body + tail, parallel chunks) and the tensor-op form
    // (taken for tables the kernel does not handle, here float64).
    [Theory]
    [InlineData(7, 19, 1, true)]
    [InlineData(600, 21, 2, true)]
    [InlineData(7, 5, 1, false)]
    public void Exact_mode_ends_where_dense_Adam_ends_with_rows_skipped(int rows, int dim, int threads, bool cpuKernel)
    {
        using var threadScope = TestData.Threads(threads);
        var (exact, dense, lazy) = RunSubsets(rows, dim, SparseAdamMode.Exact, cpuKernel);
        Assert.True(dense.Matches(exact, rtol: 1e-4, atol: 1e-5), $"max difference {dense.MaxDifference(exact)}");
        // The check can fail: lazy Adam on the same steps ends elsewhere.
        Assert.False(dense.Matches(lazy, rtol: 1e-3, atol: 1e-4));
    }

    private static (Tensor Exact, ReferenceAdam Dense, Tensor Lazy) RunSubsets(int rows, int dim, SparseAdamMode mode, bool cpuKernel)
    {
        manual_seed(5);
        var init = randn(rows, dim, dtype: cpuKernel ? ScalarType.Float32 : ScalarType.Float64);
        var exactTable = init.clone();
        var lazyTable = init.clone();
        var exact = new RowSparseAdam(exactTable, lr: 0.01, weightDecay: 0.1, mode: mode);
        var lazy = new RowSparseAdam(lazyTable, lr: 0.01, weightDecay: 0.1);
        var dense = new ReferenceAdam(init, lr: 0.01, weightDecay: 0.1);
        var rng = new Random(9);
        for (int step = 0; step < 12; step++)
        {
            // Row 0 is never touched; the others about one step in three.
            var ids = Enumerable.Range(1, rows - 1).Where(_ => rng.NextDouble() < 0.35).Select(i => (long)i).ToArray();
            if (ids.Length == 0) ids = new long[] { 1 };
            var idTensor = tensor(ids);
            var g = randn(ids.Length, dim, dtype: init.dtype);
            exact.Step(idTensor, g);
            lazy.Step(idTensor, g);
            // Dense Adam steps every row: the untouched ones with a data gradient of zero.
            dense.Step(zeros_like(init).index_copy_(0, idTensor, g));
        }
        exact.Synchronize();
        return (exactTable, dense, lazyTable);
    }
}
