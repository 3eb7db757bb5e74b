using System.Diagnostics;
using System.Runtime.ExceptionServices;
using RecDistill.Distillation;
using RecDistill.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace RecDistill.Training;

/// <summary>
/// Gradients of a batch's loss terms (the BPR loss and the distillation method's terms, see
/// <see cref="IDistillationMethod.Terms"/>)
/// computed on lanes: the calling thread and lanes - 1 worker threads, each lane with its share of
/// the threads. Every term runs on its own leaf copies of the looked-up vectors
/// (<see cref="EmbeddingLookup.WithOwnLeaves"/>) and of the method's parameters
/// (<see cref="ParameterAliases"/>), so the terms' backward passes do not meet; their gradients are
/// then added in term order, sent through the lookup in one backward call and added to the
/// parameters' gradients. The result does not depend on the number of lanes nor on which lane ran
/// which term, however many terms share a parameter (accumulated into the parameter as each term
/// finished, three terms' gradients of a shared projector would be summed in the order the lanes
/// happened to finish).
/// Why: the methods' losses are hundreds of small operations that use a second core poorly (an MKD
/// batch took 67 ms on two threads against 72 on one), while independent terms side by side keep
/// both cores busy.
/// </summary>
public sealed class LossTermLanes : IDisposable
{
    private readonly Worker[] _workers;
    // Threads of the lanes that have run their terms, lent to the lanes still running (LentThreads).
    private readonly System.Runtime.CompilerServices.StrongBox<int> _idle = new(0);
    private double[] _costMs = [];
    private Generator?[] _generators = [];

    /// <summary>Lanes (the calling thread and lanes - 1 workers), each with <paramref name="threadsPerLane"/> threads.</summary>
    public LossTermLanes(int lanes, int threadsPerLane)
    {
        if (lanes < 1) throw new ArgumentOutOfRangeException(nameof(lanes), "at least one lane");
        if (threadsPerLane < 1) throw new ArgumentOutOfRangeException(nameof(threadsPerLane), "at least one thread per lane");
        ThreadsPerLane = threadsPerLane;
        _workers = Enumerable.Range(1, lanes - 1).Select(k => new Worker($"loss lane {k}", threadsPerLane)).ToArray();
    }

    /// <summary>Lanes, the calling thread's included.</summary>
    public int Lanes => _workers.Length + 1;
    /// <summary>Threads each lane computes with.</summary>
    public int ThreadsPerLane { get; }

    /// <summary>
    /// After <see cref="Backward"/>: the L2 norm of each term's gradient with respect to the batch's
    /// looked-up user and item vectors (the embeddings every term shares), in term order. It shows
    /// which term drives the shared embeddings (a diagnostic; it changes nothing).
    /// </summary>
    public double[] LastEmbeddingGradientNorms { get; private set; } = [];

    /// <summary>
    /// Runs every term's loss and backward pass, then adds their gradients with respect to the
    /// looked-up vectors into <paramref name="lookup"/> (row-sparse leaves, or through the model for
    /// dense lookups) and their gradients with respect to <paramref name="parameters"/> (the method's
    /// projectors and experts; a parameter no term reaches keeps its gradient) into those parameters.
    /// Returns each term's loss value. The lookup's vectors and the parameters must not change meanwhile.
    /// </summary>
    public double[] Backward(EmbeddingLookup lookup, IReadOnlyList<LossTerm> terms, IReadOnlyList<Tensor> parameters)
    {
        var trained = parameters.Where(p => p.requires_grad).ToArray();
        int n = terms.Count;
        if (_costMs.Length != n) _costMs = Enumerable.Repeat(1.0, n).ToArray();
        SeedGenerators(n);
        var results = new TermResult[n];
        var plan = Plan();
        for (int w = 0; w < _workers.Length; w++)
        {
            var mine = plan[w + 1];
            _workers[w].Start(() => Run(mine));
        }
        Exception? failure = null;
        try { Run(plan[0]); }
        catch (Exception e) { failure = e; }
        // Every lane is waited for, even after a failure: a lane still running would write into this call's
        // results (and the next call's) after we return.
        foreach (var w in _workers)
        {
            var laneFailure = w.Wait();
            failure ??= laneFailure;
        }
        _idle.Value = 0;
        try
        {
            if (failure is not null) ExceptionDispatchInfo.Capture(failure).Throw();
            var gradients = new List<Tensor>();
            var targets = new List<Tensor>();
            var users = Sum(results.Select(r => r.UserGrad));
            var items = Sum(results.Select(r => r.ItemGrad));
            if (users is not null) { targets.Add(lookup.UserRows); gradients.Add(users); }
            if (items is not null) { targets.Add(lookup.ItemRows); gradients.Add(items); }
            for (int k = 0; k < trained.Length; k++)
            {
                var contributions = results.Select(r => r.ParameterGrads?[k]).Where(g => g is not null).ToList();
                if (contributions.Count == 0) continue;
                // The terms' gradients are summed in term order (g_0 + g_1 ..) and handed to autograd; a
                // parameter that still has a gradient (zeroed, with torch's Adam) takes them in place in
                // the same order, 0 + g_0 + g_1 .., the same bits.
                using var grad = trained[k].grad;
                if (grad is null) { targets.Add(trained[k]); gradients.Add(Sum(contributions)!); }
                else using (torch.no_grad()) foreach (var g in contributions) grad.PlusInPlace(g!);
            }
            if (targets.Count > 0) torch.autograd.backward(targets, gradients);
            LastEmbeddingGradientNorms = results.Select(r => Math.Sqrt(r.EmbeddingGradSquared)).ToArray();
            return results.Select(r => r.Value).ToArray();
        }
        finally
        {
            foreach (var r in results)
            {
                r.UserGrad?.Dispose(); r.ItemGrad?.Dispose();
                foreach (var g in r.ParameterGrads ?? []) g?.Dispose();
            }
        }

        void Run(List<int> mine)
        {
            using var lent = LentThreads.Use(_idle, ThreadsPerLane);
            try { RunTerms(mine); }
            finally { Interlocked.Add(ref _idle.Value, ThreadsPerLane); }
        }

        void RunTerms(List<int> mine)
        {
            foreach (int t in mine)
            {
                var clock = Stopwatch.StartNew();
                using var scope = torch.NewDisposeScope();
                var own = lookup.WithOwnLeaves();
                var term = terms[t];
                var copies = trained.Select(p => p.detach().requires_grad_(true)).ToArray();
                using (LossGenerator.Use(_generators[t]))
                using (ParameterAliases.Use(trained, copies))
                {
                    var loss = term.Loss(own);
                    results[t].Value = loss.item<float>();
                    if (loss.requires_grad) loss.backward();
                }
                results[t].UserGrad = own.UserRows.grad?.DetachFromDisposeScope();
                results[t].ItemGrad = own.ItemRows.grad?.DetachFromDisposeScope();
                results[t].ParameterGrads = copies.Select(c => c.grad?.DetachFromDisposeScope()).ToArray();
                results[t].EmbeddingGradSquared = SquaredNorm(results[t].UserGrad) + SquaredNorm(results[t].ItemGrad);
                _costMs[t] = 0.9 * _costMs[t] + 0.1 * clock.Elapsed.TotalMilliseconds;
            }
        }

        List<int>[] Plan()
        {
            // Longest term first onto the least loaded lane (by each term's recent time); each lane
            // runs its terms in term order.
            var lanes = Enumerable.Range(0, Lanes).Select(_ => new List<int>()).ToArray();
            var load = new double[Lanes];
            foreach (int t in Enumerable.Range(0, n).OrderByDescending(t => _costMs[t]).ThenBy(t => t))
            {
                int lane = Array.IndexOf(load, load.Min());
                lanes[lane].Add(t);
                load[lane] += _costMs[t];
            }
            foreach (var l in lanes) l.Sort();
            return lanes;
        }
    }

    /// <summary>
    /// One generator per term, seeded from libtorch's default generator (one draw per term, in term
    /// order, on the calling thread): each term draws what it would draw whichever lane runs it when.
    /// </summary>
    private void SeedGenerators(int n)
    {
        long[] seeds;
        using (var drawn = torch.randint(long.MaxValue, new long[] { n }, dtype: ScalarType.Int64))
            seeds = TensorCopy.ToArray<long>(drawn);
        if (_generators.Length < n) Array.Resize(ref _generators, n);
        for (int t = 0; t < n; t++)
        {
            if (_generators[t] is { } g) g.manual_seed(seeds[t]);
            else _generators[t] = new Generator((ulong)seeds[t], CPU);
        }
    }

    /// <summary>The gradients added in term order, or null when no term has one.</summary>
    private static Tensor? Sum(IEnumerable<Tensor?> gradients)
    {
        Tensor? total = null;
        foreach (var g in gradients)
        {
            if (g is null) continue;
            if (total is null) total = g.clone();
            else total.PlusInPlace(g);
        }
        return total;
    }

    private static double SquaredNorm(Tensor? g)
    {
        if (g is null) return 0;
        using var flat = g.flatten();
        using var dot = torch.dot(flat, flat);
        return dot.item<float>();
    }

    private struct TermResult
    {
        public double Value, EmbeddingGradSquared;
        public Tensor? UserGrad, ItemGrad;
        public Tensor?[]? ParameterGrads;
    }

    /// <summary>Stops the worker threads.</summary>
    public void Dispose()
    {
        foreach (var w in _workers) w.Dispose();
        foreach (var g in _generators) g?.Dispose();
    }

    /// <summary>A thread that runs one piece of work at a time, with libtorch set to its share of the threads.</summary>
    private sealed class Worker : IDisposable
    {
        private readonly Thread _thread;
        private readonly SemaphoreSlim _start = new(0);
        private readonly SemaphoreSlim _done = new(0);
        private readonly int _threads;
        private Action? _work;
        private Exception? _failure;
        private volatile bool _stopping;

        public Worker(string name, int threads)
        {
            _threads = threads;
            _thread = new Thread(Loop) { IsBackground = true, Name = name };
            _thread.Start();
        }

        public void Start(Action work)
        {
            _work = work;
            _failure = null;
            _start.Release();
        }

        /// <summary>Waits for the work to finish; returns what it threw, if anything.</summary>
        public Exception? Wait()
        {
            _done.Wait();
            return _failure;
        }

        private void Loop()
        {
            DenormalFlush.OnThisThread();
            while (true)
            {
                _start.Wait();
                if (_stopping) return;
                try
                {
                    // libtorch keeps the thread count per thread (OpenMP's setting); this lane's share.
                    if (torch.get_num_threads() != _threads) torch.set_num_threads(_threads);
                    _work!();
                }
                catch (Exception e) { _failure = e; }
                finally { _done.Release(); }
            }
        }

        public void Dispose()
        {
            _stopping = true;
            _start.Release();
            _thread.Join();
            _start.Dispose();
            _done.Dispose();
        }
    }
}
