using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Models;

public class ListScoresTests
{
    /// <summary>Values and gradients against gather + bmm, with users and items repeated across rows.</summary>
    [Theory]
    [InlineData(1, 19)]
    [InlineData(2, 19)]
    [InlineData(2, 1)]
    [InlineData(1, 12)]
    [InlineData(2, 20)]
    [InlineData(1, 45)]
    public void Matches_gather_and_bmm(int threads, int d)
    {
        using var threadScope = TestData.Threads(threads);
        torch.manual_seed(4);
        int nu = 40, ni = 90, n = 700, m = 13; // widths with every kind of remainder of the SIMD blocks
        var u0 = torch.randn(nu, d); var i0 = torch.randn(ni, d);
        var users = torch.randint(0, nu, new long[] { n }, dtype: ScalarType.Int64);
        var items = torch.randint(0, ni, new long[] { n, m }, dtype: ScalarType.Int64);
        var weights = torch.randn(n, m);

        var u1 = u0.clone().requires_grad_(true); var i1 = i0.clone().requires_grad_(true);
        var got = ListScores.Compute(u1, i1, users, items);
        (got * weights).sum().backward();

        var u2 = u0.clone().requires_grad_(true); var i2 = i0.clone().requires_grad_(true);
        var want = torch.bmm(i2.index_select(0, items.flatten()).view(n, m, d), u2.index_select(0, users).unsqueeze(-1)).squeeze(-1);
        (want * weights).sum().backward();

        Assert.True(got.allclose(want, rtol: 1e-5, atol: 1e-5), "scores");
        Assert.True(u1.grad!.allclose(u2.grad!, rtol: 1e-4, atol: 1e-4), "user gradient");
        Assert.True(i1.grad!.allclose(i2.grad!, rtol: 1e-4, atol: 1e-4), "item gradient");
    }

    [Fact]
    public void Rejects_indices_outside_the_tables()
    {
        var u = torch.randn(3, 4); var i = torch.randn(5, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => ListScores.Compute(u, i, torch.tensor(new long[] { 0, 1 }), torch.tensor(new long[,] { { 0, 5 }, { 1, 2 } })));
        Assert.Throws<ArgumentOutOfRangeException>(() => ListScores.Compute(u, i, torch.tensor(new long[] { 0, 3 }), torch.tensor(new long[,] { { 0, 4 }, { 1, 2 } })));
    }

    [Fact]
    public void Row_sparse_lookup_scores_lists_by_dense_ids()
    {
        torch.manual_seed(5);
        var userTable = torch.randn(30, 6); var itemTable = torch.randn(50, 6);
        var users = torch.tensor(new long[] { 7, 3, 7 });
        var items = torch.tensor(new long[,] { { 1, 49, 20 }, { 20, 2, 1 }, { 0, 0, 33 } });
        var look = EmbeddingLookup.RowSparse(userTable, itemTable, users, items);
        var got = look.ListScores(users, items);
        var want = torch.bmm(itemTable.index_select(0, items.flatten()).view(3, 3, 6), userTable.index_select(0, users).unsqueeze(-1)).squeeze(-1);
        Assert.True(got.allclose(want, rtol: 1e-5, atol: 1e-5));
        got.sum().backward();
        // Gradients land in the lookup's row-sparse leaves: row of item 0 gets user 7's vector twice.
        var row0 = look.ItemRows.grad!.select(0, 0);
        Assert.True(row0.allclose(userTable.select(0, 7) * FixedScalars.Of(2), rtol: 1e-5, atol: 1e-5));
    }
}
