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
    /// Computed in user chunks whose gathered item vectors stay around 4 MB: SLD asks for all
    /// users' lists every epoch (5,219 x 100 items x 200 floats would be a 418 MB temporary that
    /// costs more to write and read than the products themselves).
    /// </remarks>
    public Tensor Scores(Tensor users, Tensor items)
    {
        long n = users.shape[0], m = items.shape[1];
        long chunk = Math.Max(1, (1L << 20) / Math.Max(1, m * Dim));
        if (n <= chunk) return ScoresOf(users, items);
        var parts = new List<Tensor>();
        for (long start = 0; start < n; start += chunk)
        {
            long c = Math.Min(chunk, n - start);
            parts.Add(ScoresOf(users.narrow(0, start, c), items.narrow(0, start, c)));
        }
        var all = torch.cat(parts, 0);
        foreach (var p in parts) p.Dispose();
        return all;
    }

    private Tensor ScoresOf(Tensor users, Tensor items)
    {
        using var scope = torch.NewDisposeScope();
        var u = Users.index_select(0, users);                          // [n, d]
        var i = Items.index_select(0, items.flatten()).view(items.shape[0], items.shape[1], -1);
        return torch.bmm(i, u.unsqueeze(-1)).squeeze(-1).MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        Users.Dispose();
        Items.Dispose();
    }
}
