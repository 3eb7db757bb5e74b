using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Models;

/// <summary>Common parts of the two backbones: the two tables and their initialisation.</summary>
public abstract class EmbeddingModel : IRecommender
{
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

    public abstract Backbone Backbone { get; }
    public int Dim { get; }
    public int NumUsers { get; }
    public int NumItems { get; }
    public Device Device { get; }
    public TorchSharp.Modules.Parameter UserWeight { get; }
    public TorchSharp.Modules.Parameter ItemWeight { get; }
    public long ParameterCount => (long)(NumUsers + NumItems) * Dim;
    public abstract bool RowSparse { get; }
    public abstract EmbeddingLookup Lookup(Tensor userIds, Tensor itemIds);
    public abstract (Tensor Users, Tensor Items) FinalEmbeddings();

    /// <summary>Copies tables in (shapes must match).</summary>
    public void Load(float[] users, float[] items)
    {
        using var _ = torch.no_grad();
        UserWeight.copy_(torch.tensor(users, NumUsers, Dim).to(Device));
        ItemWeight.copy_(torch.tensor(items, NumItems, Dim).to(Device));
    }

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
    public const double DefaultInitStd = 0.01;

    public BprMf(int numUsers, int numItems, int dim, Device? device = null, double initStd = DefaultInitStd)
        : base(numUsers, numItems, dim, initStd, device ?? torch.CPU) { }

    public override Backbone Backbone => Backbone.Bpr;
    public override bool RowSparse => true;

    public override EmbeddingLookup Lookup(Tensor userIds, Tensor itemIds) =>
        EmbeddingLookup.RowSparse(UserWeight, ItemWeight, userIds, itemIds);

    public override (Tensor Users, Tensor Items) FinalEmbeddings()
    {
        using var _ = torch.no_grad();
        // The scope holds the detached views while clone reads them (a tensor that nothing holds can be
        // finalized mid-call, as a Scalar can); the copies go to the caller's scope, if any.
        using var scope = torch.NewDisposeScope();
        return (UserWeight.detach().clone().MoveToOuterDisposeScope(), ItemWeight.detach().clone().MoveToOuterDisposeScope());
    }
}
