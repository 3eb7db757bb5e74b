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
    private readonly Tensor? _userMap;  // dense id -> row in _users (row-sparse form only)
    private readonly Tensor? _itemMap;

    private EmbeddingLookup(Tensor users, Tensor items, Tensor? userIds, Tensor? itemIds, Tensor? userMap = null, Tensor? itemMap = null)
    {
        _users = users; _items = items; _userIds = userIds; _itemIds = itemIds; _userMap = userMap; _itemMap = itemMap;
    }

    /// <summary>Row-sparse leaves: gradients land in <see cref="UserRows"/>.grad / <see cref="ItemRows"/>.grad.</summary>
    public static EmbeddingLookup RowSparse(Tensor userTable, Tensor itemTable, Tensor userIds, Tensor itemIds)
    {
        Tensor ur, ir, uu, ui, uMap, iMap;
        using (torch.no_grad())
        {
            (uu, uMap) = Rows(userIds.flatten(), userTable.shape[0]);
            (ui, iMap) = Rows(itemIds.flatten(), itemTable.shape[0]);
            ur = userTable.index_select(0, uu);
            ir = itemTable.index_select(0, ui);
        }
        ur.requires_grad_(true);
        ir.requires_grad_(true);
        return new EmbeddingLookup(ur, ir, uu, ui, uMap, iMap);
    }

    /// <summary>
    /// Sorted distinct ids and a dense id -> local row map, in O(ids + table rows) without sorting the
    /// ids (batches with distillation lists request hundreds of thousands of ids).
    /// </summary>
    private static (Tensor Ids, Tensor Map) Rows(Tensor ids, long tableRows)
    {
        if (ids.device_type == DeviceType.CPU) return RowsOnCpu(ids, tableRows);
        var touched = torch.zeros(tableRows, dtype: ScalarType.Bool, device: ids.device).index_fill_(0, ids, FixedScalars.True);
        var unique = touched.nonzero().squeeze(1);
        var map = torch.zeros(tableRows, dtype: ScalarType.Int64, device: ids.device)
            .index_copy_(0, unique, FixedScalars.Arange(unique.shape[0], ScalarType.Int64, ids.device));
        return (unique, map);
    }

    /// <summary>
    /// <see cref="Rows"/> on the CPU in two passes over the ids and the map: a batch with distillation lists
    /// requests some 200,000 ids, and the libtorch form (a mask, its nonzero entries, a map filled by
    /// index_copy) took about a millisecond per batch, on the trainer's path between the loss terms.
    /// </summary>
    private static unsafe (Tensor Ids, Tensor Map) RowsOnCpu(Tensor ids, long tableRows)
    {
        // Straight on the tensors' memory: managed arrays of this size would be large-object allocations every batch.
        using var requested = ids.to(ScalarType.Int64).contiguous();
        var map = torch.zeros(tableRows, dtype: ScalarType.Int64);
        long n = requested.numel(), count = 0;
        Tensor unique;
        fixed (byte* rb = requested.bytes, mb = map.bytes)
        {
            long* req = (long*)rb, m = (long*)mb;
            for (long k = 0; k < n; k++)
            {
                long id = req[k];
                if ((ulong)id >= (ulong)tableRows) throw new ArgumentOutOfRangeException(nameof(ids), $"id {id} outside a table of {tableRows} rows");
                m[id] = 1;
            }
            for (long id = 0; id < tableRows; id++) count += m[id];
            unique = torch.empty(count, dtype: ScalarType.Int64);
            fixed (byte* ub = unique.bytes)
            {
                long* u = (long*)ub;
                long next = 0;
                for (long id = 0; id < tableRows; id++)
                {
                    if (m[id] == 0) continue;
                    u[next] = id;
                    m[id] = next++;
                }
            }
        }
        return (unique, map);
    }

    /// <summary>
    /// Whole final tables (already carrying autograd history to the parameters). With
    /// <paramref name="listScores"/> the BPR loss scores the batch through <see cref="ListScores"/>
    /// on the tables in place (LightGCN: one gradient table per side instead of one per gather and
    /// their sum); without, through gathers and a product (the dense baseline of bench/speed.cs).
    /// </summary>
    public static EmbeddingLookup Dense(Tensor finalUsers, Tensor finalItems, bool listScores = false) =>
        new(finalUsers, finalItems, null, null) { ScoresLists = listScores };

    /// <summary>Whether the BPR loss scores through <see cref="ListScores"/> (always for row-sparse lookups).</summary>
    public bool ScoresLists { get; private init; }

    /// <summary>
    /// The same vectors as new leaves (sharing storage; ids and maps shared): a loss term computed
    /// on them leaves its gradient in their .grad and no other term's, so terms can run their
    /// backward passes on different threads. The vectors must not change while the copy is in use.
    /// </summary>
    public EmbeddingLookup WithOwnLeaves() =>
        new(_users.detach().requires_grad_(true), _items.detach().requires_grad_(true), _userIds, _itemIds, _userMap, _itemMap)
            { ScoresLists = ScoresLists };

    /// <summary>Whether this is the row-sparse form (only the requested rows gathered) rather than whole tables.</summary>
    public bool IsRowSparse => _userIds is not null;
    /// <summary>The user vectors held: the gathered rows (row-sparse) or the whole final table.</summary>
    public Tensor UserRows => _users;
    /// <summary>The item vectors held: the gathered rows (row-sparse) or the whole final table.</summary>
    public Tensor ItemRows => _items;
    /// <summary>Row-sparse form: the dense user id of each row of <see cref="UserRows"/> (sorted, distinct); else null.</summary>
    public Tensor? UserRowIds => _userIds;
    /// <summary>Row-sparse form: the dense item id of each row of <see cref="ItemRows"/> (sorted, distinct); else null.</summary>
    public Tensor? ItemRowIds => _itemIds;

    /// <summary>Vectors for user ids of any shape: result shape ids.shape + [d]. Ids must have been registered.</summary>
    public Tensor Users(Tensor ids) => Gather(_users, _userMap, ids);

    /// <summary>Vectors for item ids of any shape: result shape ids.shape + [d]. Ids must have been registered.</summary>
    public Tensor Items(Tensor ids) => Gather(_items, _itemMap, ids);

    /// <summary>
    /// Scores of per-user item lists: users [n], items [n, m] -> [n, m] with entry (r, j) the dot
    /// product of user r's and item items[r, j]'s vectors (<see cref="ListScores"/>).
    /// </summary>
    public Tensor ListScores(Tensor users, Tensor items)
    {
        var u = _userMap is null ? users : _userMap.index_select(0, users);
        var i = _itemMap is null ? items : _itemMap.index_select(0, items.flatten()).view(items.shape);
        return Kernels.ListScores.Compute(_users, _items, u, i);
    }

    private static Tensor Gather(Tensor rows, Tensor? map, Tensor ids)
    {
        var flat = ids.flatten();
        var local = map is null ? flat : map.index_select(0, flat);
        var shape = ids.shape.Append(rows.shape[1]).ToArray();
        return rows.index_select(0, local).view(shape);
    }
}
