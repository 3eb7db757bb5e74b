using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Hosting;
using RecDistill.Serving;
using RecDistill.Serving.Http;

namespace RecDistill.Serving.Http.Tests;

/// <summary>A small model made in memory, with its vectors kept for brute-force reference rankings.</summary>
public sealed class TinyModel
{
    public int Dim { get; }
    public float[] Users { get; }
    public float[] Items { get; }
    public string[] UserIds { get; }
    public string[] ItemIds { get; }
    public int[][] Train { get; }
    public CompactModel Model { get; }

    /// <summary>Users 10, 20, 30, ...; items 100, 103, 106, ... (non-contiguous raw ids); random vectors and train lists.</summary>
    public TinyModel(int users = 8, int items = 40, int dim = 4, int seed = 1)
    {
        var rng = new Random(seed);
        Dim = dim;
        Users = Enumerable.Range(0, users * dim).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        Items = Enumerable.Range(0, items * dim).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        UserIds = Enumerable.Range(0, users).Select(u => (10 * (u + 1)).ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        ItemIds = Enumerable.Range(0, items).Select(i => (100 + 3 * i).ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Train = Enumerable.Range(0, users).Select(_ => Enumerable.Range(0, 1 + rng.Next(5)).Select(_ => rng.Next(items)).Distinct().Order().ToArray()).ToArray();
        Model = CompactModel.Create(ModelBackbone.Bpr, 0, dim, Users, Items, UserIds, ItemIds,
            Train.Select(t => (IReadOnlyList<int>)t).ToArray(), VectorPrecision.Fp32);
    }

    public string Write(string path)
    {
        Model.Save(path);
        return path;
    }

    public double Score(float[] u, int item)
    {
        double s = 0;
        for (int c = 0; c < Dim; c++) s += (double)u[c] * Items[item * Dim + c];
        return s;
    }

    public float[] UserVector(int u) => Users.AsSpan(u * Dim, Dim).ToArray();

    public float[] ItemVector(int i) => Items.AsSpan(i * Dim, Dim).ToArray();

    /// <summary>Item ids of the k best items for vector u by brute force (double precision), ties by lower dense id, leaving out <paramref name="leaveOut"/>.</summary>
    public string[] Ranking(float[] u, int k, IEnumerable<int> leaveOut)
    {
        var skip = leaveOut.ToHashSet();
        return Enumerable.Range(0, ItemIds.Length).Where(i => !skip.Contains(i))
            .OrderByDescending(i => Score(u, i)).ThenBy(i => i).Take(k)
            .Select(i => ItemIds[i].ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
    }

    public int ItemIndex(string id) => Array.IndexOf(ItemIds, id);
}

/// <summary>A temporary folder, deleted at the end.</summary>
public sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("recdistill-http-").FullName;

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>
/// The service in the framework's test host (Microsoft.AspNetCore.Mvc.Testing): the same services and
/// pipeline as `recdistill serve` (<see cref="ServingHost.AddRecDistillServing"/>,
/// <see cref="ServingHost.UseRecDistillServing"/>) on a generic host, since the service lives in a library
/// rather than an application's entry point.
/// </summary>
public sealed class ServingFactory(ServingOptions options) : WebApplicationFactory<ServingFactory>
{
    public ServingOptions Options { get; } = options;

    protected override IHostBuilder CreateHostBuilder() =>
        Host.CreateDefaultBuilder()
            .ConfigureWebHost(web => web
                .ConfigureServices(s => s.AddRecDistillServing(Options))
                .Configure(app => app.UseRecDistillServing()));

    protected override void ConfigureWebHost(IWebHostBuilder builder) => builder.UseContentRoot(AppContext.BaseDirectory);
}

/// <summary>Waits for a condition that a background reload makes true.</summary>
public static class Eventually
{
    public static async Task<bool> True(Func<Task<bool>> condition, TimeSpan? timeout = null)
    {
        var until = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (DateTime.UtcNow < until)
        {
            if (await condition()) return true;
            await Task.Delay(50);
        }
        return await condition();
    }
}
