using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Models;

/// <summary>Common parts of the two backbones: the two tables and their initialisation.</summary>
public abstract class EmbeddingModel : IRecommender
{
    /// <summary>Both tables drawn from N(0, initStd²) on the CPU generator, then moved to <paramref name="device"/>.</summary>
    protected EmbeddingModel(int numUsers, int numItems, int dim, double initStd, Device device)
    {
        if (numUsers <= 0 || numItems <= 0) throw new ArgumentException("the dataset has no users or no items");
        if (dim <= 0) throw new ArgumentOutOfRangeException(nameof(dim), "dim must be positive");
        NumUsers = numUsers; NumItems = numItems; Dim = dim; Device = device;
        // Initial values are drawn on the CPU generator so a seed gives the same model on any device.
        using Scalar std = initStd;
        UserWeight = new TorchSharp.Modules.Parameter(torch.randn(numUsers, dim).mul_(std).to(device));
        ItemWeight = new TorchSharp.Modules.Parameter(torch.randn(numItems, dim).mul_(std).to(device));
    }

    /// <inheritdoc/>
    public abstract Backbone Backbone { get; }
    /// <inheritdoc/>
    public int Dim { get; }
    /// <inheritdoc/>
    public int NumUsers { get; }
    /// <inheritdoc/>
    public int NumItems { get; }
    /// <inheritdoc/>
    public Device Device { get; }
    /// <inheritdoc/>
    public TorchSharp.Modules.Parameter UserWeight { get; }
    /// <inheritdoc/>
    public TorchSharp.Modules.Parameter ItemWeight { get; }
    /// <inheritdoc/>
    public long ParameterCount => (long)(NumUsers + NumItems) * Dim;
    /// <inheritdoc/>
    public abstract bool RowSparse { get; }
    /// <inheritdoc/>
    public abstract EmbeddingLookup Lookup(Tensor userIds, Tensor itemIds);
    /// <inheritdoc/>
    public abstract (Tensor Users, Tensor Items) FinalEmbeddings();

    /// <summary>Copies tables in (shapes must match).</summary>
    public void Load(float[] users, float[] items)
    {
        using var _ = torch.no_grad();
        UserWeight.copy_(torch.tensor(users, NumUsers, Dim).to(Device));
        ItemWeight.copy_(torch.tensor(items, NumItems, Dim).to(Device));
    }

    /// <summary>Frees the two tables.</summary>
    public virtual void Dispose()
    {
        UserWeight.Dispose();
        ItemWeight.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>BPR-MF: score(u, i) = &lt;e_u, e_i&gt; on the raw tables.</summary>
public sealed class BprMf : EmbeddingModel
{
    /// <summary>Standard deviation of the initial table values unless one is given.</summary>
    public const double DefaultInitStd = 0.01;

    /// <summary>A BPR-MF model with tables of <paramref name="dim"/> columns, on <paramref name="device"/> (the CPU when null).</summary>
    public BprMf(int numUsers, int numItems, int dim, Device? device = null, double initStd = DefaultInitStd)
        : base(numUsers, numItems, dim, initStd, device ?? torch.CPU) { }

    /// <summary>Always <see cref="Backbone.Bpr"/>.</summary>
    public override Backbone Backbone => Backbone.Bpr;
    /// <summary>True: a batch's loss reads only the rows it gathers.</summary>
    public override bool RowSparse => true;

    /// <summary>A row-sparse lookup: only the batch's distinct rows become leaves.</summary>
    public override EmbeddingLookup Lookup(Tensor userIds, Tensor itemIds) =>
        EmbeddingLookup.RowSparse(UserWeight, ItemWeight, userIds, itemIds);

    /// <summary>Copies of the two tables, without gradient.</summary>
    public override (Tensor Users, Tensor Items) FinalEmbeddings()
    {
        using var _ = torch.no_grad();
        // The scope holds the detached views while clone reads them (a tensor that nothing holds can be
        // finalized mid-call, as a Scalar can); the copies go to the caller's scope, if any.
        using var scope = torch.NewDisposeScope();
        return (UserWeight.detach().clone().MoveToOuterDisposeScope(), ItemWeight.detach().clone().MoveToOuterDisposeScope());
    }
}
