using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Tests.Models;

public class EmbeddingLookupTests
{
    [Fact]
    public void Row_sparse_lookup_holds_each_requested_row_once_in_id_order()
    {
        torch.manual_seed(2);
        var users = torch.randn(10, 3); var items = torch.randn(1000, 3);
        var itemIds = torch.randint(0, 1000, new long[] { 5000 }, dtype: ScalarType.Int64);
        var look = EmbeddingLookup.RowSparse(users, items, torch.tensor(new long[] { 9, 0, 9, 4 }), itemIds);

        Assert.Equal(new long[] { 0, 4, 9 }, look.UserRowIds!.data<long>().ToArray());
        var want = itemIds.unique().Item1;
        Assert.True(look.ItemRowIds!.equal(want).all().item<bool>(), "distinct item ids, ascending");
        Assert.True(look.ItemRows.equal(items.index_select(0, want)).all().item<bool>(), "their rows");
        // Any requested id reads its own vector, through the local row it was given.
        Assert.True(look.Items(itemIds).equal(items.index_select(0, itemIds)).all().item<bool>());
        Assert.True(look.Users(torch.tensor(new long[] { 4, 9 })).equal(users.index_select(0, torch.tensor(new long[] { 4, 9 }))).all().item<bool>());
    }

    [Fact]
    public void Row_sparse_lookup_rejects_ids_outside_the_table()
    {
        var users = torch.randn(10, 3); var items = torch.randn(20, 3);
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingLookup.RowSparse(users, items, torch.tensor(new long[] { 1 }), torch.tensor(new long[] { 3, 20 })));
        Assert.Throws<ArgumentOutOfRangeException>(() => EmbeddingLookup.RowSparse(users, items, torch.tensor(new long[] { -1 }), torch.tensor(new long[] { 3 })));
    }
}
