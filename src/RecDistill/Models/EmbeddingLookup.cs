using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Models;

/// <summary>
/// Differentiable access to final user/item vectors during one training step.
/// Row-sparse form: only the unique requested rows are gathered into leaf tensors, so the
/// backward pass yields per-row gradients instead of gradients over whole tables.
/// </summary>
public sealed class EmbeddingLookup
{
    private readonly Tensor _users;   // [nu, d]: rows for _userIds (row-sparse) or the whole final table
    private readonly Tensor _items;
    private readonly Tensor? _userIds; // sorted unique ids (row-sparse form only)
    private readonly Tensor? _itemIds;

    private EmbeddingLookup(Tensor users, Tensor items, Tensor? userIds, Tensor? itemIds)
    {
        _users = users; _items = items; _userIds = userIds; _itemIds = itemIds;
    }

    /// <summary>Row-sparse leaves: gradients land in <see cref="UserRows"/>.grad / <see cref="ItemRows"/>.grad.</summary>
    public static EmbeddingLookup RowSparse(Tensor userTable, Tensor itemTable, Tensor userIds, Tensor itemIds)
    {
        var (uu, _, _) = torch.unique(userIds.flatten(), sorted: true);
        var (ui, _, _) = torch.unique(itemIds.flatten(), sorted: true);
        Tensor ur, ir;
        using (torch.no_grad())
        {
            ur = userTable.index_select(0, uu);
            ir = itemTable.index_select(0, ui);
        }
        ur.requires_grad_(true);
        ir.requires_grad_(true);
        return new EmbeddingLookup(ur, ir, uu, ui);
    }

    /// <summary>Whole final tables (already carrying autograd history to the parameters).</summary>
    public static EmbeddingLookup Dense(Tensor finalUsers, Tensor finalItems) => new(finalUsers, finalItems, null, null);

    public bool IsRowSparse => _userIds is not null;
    public Tensor UserRows => _users;
    public Tensor ItemRows => _items;
    public Tensor? UserRowIds => _userIds;
    public Tensor? ItemRowIds => _itemIds;

    /// <summary>Vectors for user ids of any shape: result shape ids.shape + [d]. Ids must have been registered.</summary>
    public Tensor Users(Tensor ids) => Gather(_users, _userIds, ids);

    public Tensor Items(Tensor ids) => Gather(_items, _itemIds, ids);

    private static Tensor Gather(Tensor rows, Tensor? rowIds, Tensor ids)
    {
        var flat = ids.flatten();
        var local = rowIds is null ? flat : torch.searchsorted(rowIds, flat);
        var shape = ids.shape.Append(rows.shape[1]).ToArray();
        return rows.index_select(0, local).view(shape);
    }
}
