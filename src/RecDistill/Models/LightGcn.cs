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
    /// <summary>Standard deviation of the initial E_0 values unless one is given.</summary>
    public const double DefaultInitStd = 0.1;
    private readonly GraphPropagation _propagation;
    private readonly Tensor? _sparseAdjacency; // libtorch COO form: off the CPU, or on request

    /// <summary>A LightGCN over <paramref name="numUsers"/> x <paramref name="numItems"/> with vectors of size
    /// <paramref name="dim"/> and <paramref name="layers"/> propagation layers.</summary>
    /// <param name="numUsers">Users (dense ids 0..numUsers-1).</param>
    /// <param name="numItems">Items (dense ids 0..numItems-1).</param>
    /// <param name="dim">Size of the user and item vectors.</param>
    /// <param name="layers">Propagation layers L (0 gives matrix factorisation's scores).</param>
    /// <param name="trainItemsPerUser">Each user's train items: the edges of the graph.</param>
    /// <param name="device">Where the tables live (the CPU when null).</param>
    /// <param name="initStd">Standard deviation of the normal initialisation of E_0.</param>
    /// <param name="libtorchSparseProduct">Propagate with libtorch's sparse COO product instead of the
    /// CSR kernel (the baseline of bench/speed.cs; off the CPU, and with plain forms chosen, it is always used).</param>
    public LightGcn(int numUsers, int numItems, int dim, int layers, int[][] trainItemsPerUser,
        Device? device = null, double initStd = DefaultInitStd, bool libtorchSparseProduct = false)
        : base(numUsers, numItems, dim, initStd, device ?? torch.CPU)
    {
        if (layers < 0) throw new ArgumentOutOfRangeException(nameof(layers), "layers must be 0 or more");
        Layers = layers;
        var adjacency = GraphAdjacency.Build(numUsers, numItems, trainItemsPerUser);
        _propagation = new GraphPropagation(adjacency);
        if (libtorchSparseProduct || !KernelSwitch.Uses(KernelSwitch.GraphPropagation) || Device.type != DeviceType.CPU)
            _sparseAdjacency = adjacency.ToSparseTensor().to(Device);
    }

    /// <summary>Propagation layers L.</summary>
    public int Layers { get; }
    /// <summary>Always <see cref="Backbone.LightGcn"/>.</summary>
    public override Backbone Backbone => Backbone.LightGcn;
    /// <summary>False: propagation makes every row contribute to every batch.</summary>
    public override bool RowSparse => false;

    /// <summary>A_hat as a libtorch sparse tensor.</summary>
    public static Tensor NormalizedAdjacency(int numUsers, int numItems, int[][] train) =>
        GraphAdjacency.Build(numUsers, numItems, train).ToSparseTensor();

    /// <summary>Final user and item vectors (the mean of layers 0..L), with autograd to the tables.</summary>
    private (Tensor Users, Tensor Items) Propagate()
    {
        if (_sparseAdjacency is null && KernelSwitch.Uses(KernelSwitch.GraphPropagation) && GraphPropagation.PropagatesFused)
            return _propagation.Propagate(UserWeight, ItemWeight, Layers);
        var e = torch.cat(new Tensor[] { UserWeight, ItemWeight }, 0);
        var sum = e;
        for (int l = 0; l < Layers; l++)
        {
            e = _sparseAdjacency is null ? _propagation.Multiply(e) : torch.mm(_sparseAdjacency, e);
            sum = sum.Plus(e);
        }
        var parts = (sum / FixedScalars.Of(Layers + 1)).split(new long[] { NumUsers, NumItems }, 0);
        return (parts[0], parts[1]);
    }

    /// <summary>Propagates the whole graph once and returns the dense lookup over the final vectors.</summary>
    public override EmbeddingLookup Lookup(Tensor userIds, Tensor itemIds)
    {
        var (users, items) = Propagate();
        return EmbeddingLookup.Dense(users, items, listScores: true);
    }

    /// <summary>The propagated final vectors (mean of layers 0..L), without gradient.</summary>
    public override (Tensor Users, Tensor Items) FinalEmbeddings()
    {
        using var _ = torch.no_grad();
        // The scope holds the propagation's outputs and temporaries while libtorch reads them (see
        // EmbeddingModel.FinalEmbeddings); the copies go to the caller's scope, if any.
        using var scope = torch.NewDisposeScope();
        var (users, items) = Propagate();
        return (users.clone().MoveToOuterDisposeScope(), items.clone().MoveToOuterDisposeScope());
    }

    /// <summary>Frees the tables and the libtorch adjacency, if one was built.</summary>
    public override void Dispose()
    {
        _sparseAdjacency?.Dispose();
        base.Dispose();
    }
}
