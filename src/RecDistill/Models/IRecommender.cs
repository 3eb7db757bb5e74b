using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Models;

public enum Backbone { Bpr, LightGcn }

/// <summary>
/// A latent-factor recommender: score(u, i) = &lt;final user vector, final item vector&gt;.
/// The trainer and the distillation methods only see this interface.
/// </summary>
public interface IRecommender : IDisposable
{
    Backbone Backbone { get; }
    int Dim { get; }
    int NumUsers { get; }
    int NumItems { get; }
    Device Device { get; }

    /// <summary>Trainable tables (E0): user embeddings [U, d] and item embeddings [I, d].</summary>
    TorchSharp.Modules.Parameter UserWeight { get; }
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
