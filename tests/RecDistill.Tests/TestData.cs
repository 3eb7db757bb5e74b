using RecDistill.Data;

namespace RecDistill.Tests;

/// <summary>Small hand-made datasets for fast tests.</summary>
public static class TestData
{
    /// <summary>The repository's root (the folder of RecDistill.sln above the test binaries).</summary>
    public static string RepoRoot => Root.Value;

    private static readonly Lazy<string> Root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RecDistill.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException("no RecDistill.sln above " + AppContext.BaseDirectory);
    });

    /// <summary>Synthetic data of 120 users and 150 items, for workflow tests that go through DataOptions.</summary>
    public static DataOptions TinySynthetic(int seed) => new()
    {
        Format = DataFormat.Synthetic, Synthetic = new SyntheticOptions { Users = 120, Items = 150, Seed = seed }, Seed = seed,
    };

    /// <summary>Four epochs with validation every two: enough for a workflow test to train, stop and evaluate.</summary>
    public static RecDistill.Training.TrainOptions ShortTraining(int seed) =>
        new() { MaxEpochs = 4, EvalEvery = 2, Patience = 2, LearningRate = 0.01, BatchSize = 256, Seed = seed };

    /// <summary>A random dataset with a planted structure: users of group g like items of group g.</summary>
    public static SplitDataset Clustered(int users = 60, int items = 40, int groups = 4, int perUser = 10, int seed = 1)
    {
        var rng = new Random(seed);
        int[][] tr = new int[users][], va = new int[users][], te = new int[users][];
        for (int u = 0; u < users; u++)
        {
            int g = u % groups;
            var pool = Enumerable.Range(0, items).Where(i => i % groups == g).OrderBy(_ => rng.Next()).ToList();
            var noise = Enumerable.Range(0, items).Where(i => i % groups != g).OrderBy(_ => rng.Next()).Take(2);
            var list = pool.Take(perUser - 2).Concat(noise).OrderBy(_ => rng.Next()).ToArray();
            int a = (int)(0.8 * list.Length), b = (int)(0.9 * list.Length);
            tr[u] = list[..a]; va[u] = list[a..b]; te[u] = list[b..];
        }
        return new SplitDataset
        {
            Name = "clustered",
            UserIds = Enumerable.Range(0, users).Select(x => (x * 10).ToString()).ToArray(),
            ItemIds = Enumerable.Range(0, items).Select(x => (x * 10).ToString()).ToArray(),
            Train = tr, Valid = va, Test = te,
        };
    }

    /// <summary>
    /// Sets libtorch's thread count until the result is disposed, then restores the previous one:
    /// <c>using var _ = TestData.Threads(2);</c> (tests of kernels that split rows over threads).
    /// </summary>
    public static IDisposable Threads(int count)
    {
        int before = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(count);
        return new RestoreThreads(before);
    }

    private sealed class RestoreThreads(int before) : IDisposable
    {
        public void Dispose() => TorchSharp.torch.set_num_threads(before);
    }

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "recdistill-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
