using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace RecDistill.Serving.Http;

/// <summary>
/// The model being served, and its replacement. A request takes a <see cref="Lease"/> on the current model
/// and answers from it to the end, whatever is loaded meanwhile; a reload builds the new model beside the
/// old one, swaps it in, and the old one is released when its last request has finished. A file that
/// cannot be loaded (truncated, corrupt, missing) is refused and logged, and the old model keeps serving.
/// </summary>
public sealed class ModelStore : IDisposable
{
    private readonly ServingOptions _options;
    private readonly SemaphoreSlim _reloading = new(1, 1);
    private Lease? _current;
    private long _loads, _refusals;

    /// <summary>A store for the model file in <paramref name="options"/>, serving <paramref name="initial"/> if given (else nothing until a reload).</summary>
    /// <param name="options">The model file's path and how to load it.</param>
    /// <param name="initial">A model already loaded, served at once and counted as the first load.</param>
    /// <param name="log">Where loads and refusals are logged; none when null.</param>
    public ModelStore(ServingOptions options, ModelAdapter? initial = null, ILogger<ModelStore>? log = null)
    {
        _options = options;
        Log = log ?? NullLogger<ModelStore>.Instance;
        if (initial is not null)
        {
            _current = new Lease(initial);
            _loads = 1;
        }
    }

    private ILogger Log { get; }

    /// <summary>The model now served, or null before the first successful load.</summary>
    public ModelInfo? Current => Volatile.Read(ref _current)?.Model.Info;

    /// <summary>Models loaded (the first one included).</summary>
    public long Loads => Interlocked.Read(ref _loads);

    /// <summary>Files refused (could not be read or failed the checks).</summary>
    public long Refusals => Interlocked.Read(ref _refusals);

    /// <summary>A hold on the current model until disposed, or null when none is loaded.</summary>
    public Lease? Acquire()
    {
        while (true)
        {
            var lease = Volatile.Read(ref _current);
            if (lease is null) return null;
            if (lease.TryAddRef()) return lease;
            // Retired between the read and the AddRef: the swap has already published its successor.
        }
    }

    /// <summary>
    /// Loads the model file again. Returns the outcome: a new model, the same model (the file's bytes hash
    /// to the model already served), or a refusal with its reason (the old model keeps serving).
    /// </summary>
    public ReloadResult Reload(string why)
    {
        _reloading.Wait();
        try
        {
            byte[] bytes;
            ModelAdapter next;
            try
            {
                bytes = File.ReadAllBytes(_options.ModelPath);
                var sha = ModelAdapter.Checksums(bytes).Sha256;
                if (Current is { } now && now.Sha256 == sha)
                {
                    Log.LogInformation("model file {Path} unchanged ({Why}); still serving sha256 {Sha}", _options.ModelPath, why, sha);
                    return new ReloadResult(ReloadOutcome.Unchanged, now, null);
                }
                next = ModelAdapter.Load(bytes, _options.ModelPath, _options);
            }
            catch (Exception e) when (e is CompactModelFormatException or IOException or UnauthorizedAccessException
                                          or NotSupportedException or OutOfMemoryException or ArgumentException)
            {
                Interlocked.Increment(ref _refusals);
                var reason = e is CompactModelFormatException f ? f.Reason : e.Message;
                if (Current is { } serving)
                    Log.LogError("model file {Path} refused ({Why}): {Reason}; still serving sha256 {Sha}", _options.ModelPath, why, reason, serving.Sha256);
                else
                    Log.LogError("model file {Path} refused ({Why}): {Reason}; no model is loaded", _options.ModelPath, why, reason);
                return new ReloadResult(ReloadOutcome.Refused, Current, reason);
            }
            Install(next);
            Log.LogInformation("loaded {Path} ({Why}): sha256 {Sha}, {Users} users, {Items} items, d={Dim}, {Precision}, {Index} index, {Seconds:F3} s",
                _options.ModelPath, why, next.Info.Sha256, next.Info.Users, next.Info.Items, next.Info.Dim, next.Info.Precision, next.Info.Index, next.Info.LoadSeconds);
            return new ReloadResult(ReloadOutcome.Loaded, next.Info, null);
        }
        finally
        {
            _reloading.Release();
        }
    }

    private void Install(ModelAdapter next)
    {
        var old = Interlocked.Exchange(ref _current, new Lease(next));
        Interlocked.Increment(ref _loads);
        old?.Dispose(); // the store's own hold; the model is freed when its last request ends
    }

    /// <summary>Releases the store's hold on the current model (freed once its last request ends); the store takes no reload after this.</summary>
    public void Dispose()
    {
        Interlocked.Exchange(ref _current, null)?.Dispose();
        _reloading.Dispose();
    }

    /// <summary>
    /// A counted hold on one loaded model. The store holds one reference while the model is current and each
    /// request one more; the model is disposed (its native index freed) when the count reaches zero.
    /// </summary>
    public sealed class Lease : IDisposable
    {
        private int _refs = 1;

        internal Lease(ModelAdapter model) => Model = model;

        /// <summary>The model this lease holds; valid until the lease is disposed.</summary>
        public ModelAdapter Model { get; }

        internal bool TryAddRef()
        {
            while (true)
            {
                int n = Volatile.Read(ref _refs);
                if (n == 0) return false;
                if (Interlocked.CompareExchange(ref _refs, n + 1, n) == n) return true;
            }
        }

        /// <summary>Gives the hold back; the last one disposes the model.</summary>
        public void Dispose()
        {
            if (Interlocked.Decrement(ref _refs) == 0) Model.Dispose();
        }
    }
}

/// <summary>What a reload of the model file did.</summary>
public enum ReloadOutcome
{
    /// <summary>A new model was loaded and is now served.</summary>
    Loaded,
    /// <summary>The file's bytes hash to the model already served; nothing changed.</summary>
    Unchanged,
    /// <summary>The file could not be read or failed the checks; the previous model (if any) keeps serving.</summary>
    Refused,
}

/// <summary>What a reload did; <see cref="Model"/> is what is served afterwards (null if nothing is), <see cref="Error"/> why a file was refused.</summary>
public sealed record ReloadResult(ReloadOutcome Outcome, ModelInfo? Model, string? Error);
