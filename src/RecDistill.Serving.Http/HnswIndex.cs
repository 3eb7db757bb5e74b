using Cloud.Unum.USearch;

namespace RecDistill.Serving.Http;

/// <summary>
/// An approximate inner-product index over item vectors: USearch's HNSW graph (native library, shipped in
/// the Cloud.Unum.USearch package). Keys are dense item ids. Built once, read by many threads.
/// <para>
/// USearch keeps one search context per hardware thread and does not check that one is free, so
/// concurrent searches are limited to <see cref="Environment.ProcessorCount"/> by a semaphore (never more
/// than USearch has contexts for); further requests wait their turn.
/// </para>
/// </summary>
internal sealed class HnswIndex : IDisposable
{
    private readonly USearchIndex _index;
    private readonly SemaphoreSlim _contexts = new(Environment.ProcessorCount, Environment.ProcessorCount);
    private readonly int _dim;
    private int _disposed;

    private HnswIndex(USearchIndex index, int dim)
    {
        _index = index;
        _dim = dim;
    }

    /// <summary>
    /// Builds the graph from row-major vectors (vector i at [i*dim, (i+1)*dim)), on the calling thread.
    /// The search beam is set to 1 so that a query's beam is exactly the number of candidates it asks for
    /// (USearch searches with the larger of the two).
    /// </summary>
    public static HnswIndex Build(float[] rowMajor, int count, int dim, HnswOptions options)
    {
        var index = new USearchIndex(MetricKind.Ip, ScalarKind.Float32, (ulong)dim,
            (ulong)options.Connectivity, (ulong)options.ExpansionAdd, expansionSearch: 1, multi: false);
        try
        {
            // The batch form grows the capacity once per chunk; USearch copies each vector into its own storage.
            const int chunk = 16384;
            for (int start = 0; start < count; start += chunk)
            {
                int n = Math.Min(chunk, count - start);
                var keys = new ulong[n];
                var rows = new float[n][];
                for (int j = 0; j < n; j++)
                {
                    keys[j] = (ulong)(start + j);
                    rows[j] = rowMajor.AsSpan((start + j) * dim, dim).ToArray();
                }
                index.Add(keys, rows);
            }
            return new HnswIndex(index, dim);
        }
        catch
        {
            index.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Up to <paramref name="count"/> candidate dense ids for <paramref name="query"/>, roughly best first
    /// by inner product (the caller rescores them exactly).
    /// </summary>
    public int[] Search(float[] query, int count)
    {
        if (query.Length != _dim) throw new ArgumentException($"query has {query.Length} values, the index {_dim}");
        _contexts.Wait();
        try
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            int found = _index.Search(query, count, out ulong[] keys, out _);
            var ids = new int[found];
            for (int j = 0; j < found; j++) ids[j] = (int)keys[j];
            return ids;
        }
        finally
        {
            _contexts.Release();
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        // Wait for searches still running, free the native graph, and let later callers in to be refused.
        for (int i = 0; i < Environment.ProcessorCount; i++) _contexts.Wait();
        _index.Dispose();
        _contexts.Release(Environment.ProcessorCount);
    }
}
