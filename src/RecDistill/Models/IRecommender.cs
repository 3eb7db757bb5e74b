using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Models;

/// <summary>The model families a recommender can be.</summary>
public enum Backbone
{
    /// <summary>BPR-MF: matrix factorization, scores on the raw tables.</summary>
    Bpr,
    /// <summary>LightGCN: the tables propagated over the user-item graph, scores on the layer mean.</summary>
    LightGcn,
}

/// <summary>
/// A latent-factor recommender: score(u, i) = &lt;final user vector, final item vector&gt;.
/// The trainer and the distillation methods only see this interface. Its tables are TorchSharp tensors in
/// native memory: dispose a model when done with it.
/// </summary>
public interface IRecommender : IDisposable
{
/// <summary>Which backbone this is.</summary>
    Backbone Backbone { get; }
/// <summary>Size of the user and item vectors.</summary>
    int Dim { get; }
/// <summary>Number of users (dense indices 0 to NumUsers - 1).</summary>
    int NumUsers { get; }
/// <summary>Number of items (dense indices 0 to NumItems - 1).</summary>
    int NumItems { get; }
/// <summary>Where the tables live.</summary>
    Device Device { get; }

    /// <summary>Trainable tables (E0): user embeddings [U, d] and item embeddings [I, d].</summary>
    TorchSharp.Modules.Parameter UserWeight { get; }
/// <summary>Trainable item embeddings (E0) [I, d]; see <see cref="UserWeight"/>.</summary>
    TorchSharp.Modules.Parameter ItemWeight { get; }

    /// <summary>Parameters of the served model (the two tables).</summary>
    long ParameterCount { get; }

    /// <summary>
    /// True when a batch's loss depends only on the table rows it gathers (BPR-MF), so the optimizer
    /// can update just those rows; false when every row contributes (LightGCN propagation).
    /// </summary>
    bool RowSparse { get; }

    /// <summary>
    /// Starts a differentiable forward pass over the given user and item ids (all the ids the
    /// batch's losses will ask for).
    /// </summary>
    EmbeddingLookup Lookup(Tensor userIds, Tensor itemIds);

    /// <summary>Final user and item vectors without gradient (for evaluation and export).</summary>
    (Tensor Users, Tensor Items) FinalEmbeddings();
}
