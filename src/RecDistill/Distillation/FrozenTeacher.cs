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
    public FrozenTeacher(Tensor users, Tensor items, Backbone backbone)
    {
        Users = users.detach().clone();
        Items = items.detach().clone();
        Backbone = backbone;
    }

    public static FrozenTeacher From(IRecommender model)
    {
        var (u, i) = model.FinalEmbeddings();
        using (u) using (i) return new FrozenTeacher(u, i, model.Backbone);
    }

    public static FrozenTeacher Load(string modelPath, SplitDataset data, Device device)
    {
        using var model = ModelFile.Load(modelPath, data, device);
        return From(model);
    }

    public Tensor Users { get; }
    public Tensor Items { get; }
    public Backbone Backbone { get; }
    public int Dim => (int)Users.shape[1];
    public int NumUsers => (int)Users.shape[0];
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

    public void Dispose()
    {
        Users.Dispose();
        Items.Dispose();
    }
}
