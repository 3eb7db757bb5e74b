using RecDistill.Data;
using RecDistill.Models;
using RecDistill.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Distillation;

/// <summary>
/// The teacher's final user and item vectors, detached and never trained: every method reads the
/// teacher through this, so nothing can update it.
/// </summary>
public sealed class FrozenTeacher : IDisposable
{
    /// <summary>Detached copies of the given user and item vectors.</summary>
    public FrozenTeacher(Tensor users, Tensor items, Backbone backbone)
    {
        Users = users.detach().clone();
        Items = items.detach().clone();
        Backbone = backbone;
    }

    /// <summary>The final user and item vectors of a model (<see cref="IRecommender.FinalEmbeddings"/>).</summary>
    public static FrozenTeacher From(IRecommender model)
    {
        var (u, i) = model.FinalEmbeddings();
        using (u) using (i) return new FrozenTeacher(u, i, model.Backbone);
    }

    /// <summary>Loads a model file for the data onto the device and keeps its final vectors; the model is freed.</summary>
    public static FrozenTeacher Load(string modelPath, SplitDataset data, Device device)
    {
        using var model = ModelFile.Load(modelPath, data, device);
        return From(model);
    }

    /// <summary>User vectors [users, d_T].</summary>
    public Tensor Users { get; }
    /// <summary>Item vectors [items, d_T].</summary>
    public Tensor Items { get; }
    /// <summary>The teacher model's backbone.</summary>
    public Backbone Backbone { get; }
    /// <summary>The teacher's dimension d_T.</summary>
    public int Dim => (int)Users.shape[1];
    /// <summary>Number of users.</summary>
    public int NumUsers => (int)Users.shape[0];
    /// <summary>Number of items.</summary>
    public int NumItems => (int)Items.shape[0];

    /// <summary>Teacher scores: users [n], items [n, m] -> [n, m].</summary>
    /// <remarks>
    /// <see cref="ListScores"/> reads the vectors in place where it can. Otherwise it gathers them, so
    /// this runs in user chunks whose gathered item vectors stay around 4 MB: SLD asks for all users'
    /// lists every epoch (5,219 x 100 items x 200 floats would be a 418 MB temporary).
    /// </remarks>
    public Tensor Scores(Tensor users, Tensor items)
    {
        using var _ = torch.no_grad();
        long n = users.shape[0], m = items.shape[1];
        long chunk = ListScores.ReadsInPlace(Users, Items) ? n : Math.Max(1, (1L << 20) / Math.Max(1, m * Dim));
        if (n <= chunk) return ListScores.Compute(Users, Items, users, items);
        var parts = new List<Tensor>();
        for (long start = 0; start < n; start += chunk)
        {
            long c = Math.Min(chunk, n - start);
            parts.Add(ListScores.Compute(Users, Items, users.narrow(0, start, c), items.narrow(0, start, c)));
        }
        var all = torch.cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        return all;
    }

    /// <summary>Frees the vectors.</summary>
    public void Dispose()
    {
        Users.Dispose();
        Items.Dispose();
    }
}
