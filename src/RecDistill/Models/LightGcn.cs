using RecDistill.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Models;

/// <summary>
/// LightGCN: E_{l+1} = A_hat E_l over the user-item graph of the train pairs,
/// A_hat = D^-1/2 A D^-1/2, final vectors = mean(E_0..E_L).
/// </summary>
public sealed class LightGcn : EmbeddingModel
{
    public const double DefaultInitStd = 0.1;
    private readonly Tensor _adjacency; // sparse [U+I, U+I]

    public LightGcn(int numUsers, int numItems, int dim, int layers, int[][] trainItemsPerUser,
        Device? device = null, double initStd = DefaultInitStd)
        : base(numUsers, numItems, dim, initStd, device ?? torch.CPU)
    {
        if (layers < 0) throw new ArgumentOutOfRangeException(nameof(layers), "layers must be 0 or more");
        Layers = layers;
        _adjacency = NormalizedAdjacency(numUsers, numItems, trainItemsPerUser).to(Device);
    }

    public int Layers { get; }
    public override Backbone Backbone => Backbone.LightGcn;
    public override bool RowSparse => false;

    public static Tensor NormalizedAdjacency(int numUsers, int numItems, int[][] train)
    {
        long nnz = 0;
        foreach (var items in train) nnz += items.Length;
        var itemDegree = new int[numItems];
        foreach (var items in train) foreach (var i in items) itemDegree[i]++;
        var rows = new long[2 * nnz];
        var cols = new long[2 * nnz];
        var vals = new float[2 * nnz];
        long k = 0;
        for (int u = 0; u < numUsers; u++)
        {
            var items = train[u];
            foreach (var i in items)
            {
                float w = (float)(1.0 / Math.Sqrt((double)items.Length * itemDegree[i]));
                rows[k] = u; cols[k] = numUsers + i; vals[k] = w; k++;
                rows[k] = numUsers + i; cols[k] = u; vals[k] = w; k++;
            }
        }
        long n = numUsers + numItems;
        var indices = torch.stack(new[] { torch.tensor(rows), torch.tensor(cols) });
        return torch.sparse_coo_tensor(indices, torch.tensor(vals), new[] { n, n });
    }

    private Tensor Propagate()
    {
        var e = torch.cat(new Tensor[] { UserWeight, ItemWeight }, 0);
        var sum = e;
        for (int l = 0; l < Layers; l++)
        {
            e = torch.mm(_adjacency, e);
            sum = sum + e;
        }
        return sum / (Layers + 1);
    }

    public override EmbeddingLookup Lookup(Tensor userIds, Tensor itemIds)
    {
        var all = Propagate();
        var parts = all.split(new long[] { NumUsers, NumItems }, 0);
        return EmbeddingLookup.Dense(parts[0], parts[1]);
    }

    public override (Tensor Users, Tensor Items) FinalEmbeddings()
    {
        using var _ = torch.no_grad();
        var all = Propagate();
        return (all.narrow(0, 0, NumUsers).clone(), all.narrow(0, NumUsers, NumItems).clone());
    }

    public override void Dispose()
    {
        _adjacency.Dispose();
        base.Dispose();
    }
}
