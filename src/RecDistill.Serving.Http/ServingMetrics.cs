using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace RecDistill.Serving.Http;

/// <summary>
/// Request counters and latency histograms, written in the Prometheus text exposition format (version
/// 0.0.4) by GET /metrics, with the loaded model's checksums, shape and load time. Lock-free counters;
/// a scrape reads them without stopping requests.
/// </summary>
public sealed class ServingMetrics
{
    /// <summary>Upper bounds of the latency buckets, in seconds (+Inf is implied).</summary>
    public static readonly double[] LatencyBounds = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 };

    private readonly ConcurrentDictionary<(string Endpoint, int Status), Counter> _requests = new();
    private readonly ConcurrentDictionary<string, Histogram> _latency = new();
    private long _inFlight;

    private sealed class Counter
    {
        public long Value;
    }

    private sealed class Histogram
    {
        public readonly long[] Buckets = new long[LatencyBounds.Length + 1];
        public long Count;
        public long SumTicks; // in 100 ns units
    }

    internal void Begin() => Interlocked.Increment(ref _inFlight);

    /// <summary>Records one finished request: its endpoint name, HTTP status and duration.</summary>
    internal void End(string endpoint, int status, TimeSpan elapsed)
    {
        Interlocked.Decrement(ref _inFlight);
        Interlocked.Increment(ref _requests.GetOrAdd((endpoint, status), _ => new Counter()).Value);
        var h = _latency.GetOrAdd(endpoint, _ => new Histogram());
        double seconds = elapsed.TotalSeconds;
        int b = 0;
        while (b < LatencyBounds.Length && seconds > LatencyBounds[b]) b++;
        Interlocked.Increment(ref h.Buckets[b]);
        Interlocked.Increment(ref h.Count);
        Interlocked.Add(ref h.SumTicks, elapsed.Ticks);
    }

    /// <summary>The exposition text: requests, latency, requests in flight, reloads and the model.</summary>
    public string Render(ModelStore store)
    {
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append("# HELP recdistill_http_requests_total HTTP requests answered, by endpoint and status code.\n");
        sb.Append("# TYPE recdistill_http_requests_total counter\n");
        foreach (var (key, c) in _requests.OrderBy(kv => kv.Key.Endpoint, StringComparer.Ordinal).ThenBy(kv => kv.Key.Status))
            sb.Append(inv, $"recdistill_http_requests_total{{endpoint=\"{Escape(key.Endpoint)}\",status=\"{key.Status}\"}} {Interlocked.Read(ref c.Value)}\n");

        sb.Append("# HELP recdistill_http_request_duration_seconds Time from routing to the end of the handler, by endpoint.\n");
        sb.Append("# TYPE recdistill_http_request_duration_seconds histogram\n");
        foreach (var (endpoint, h) in _latency.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            string e = Escape(endpoint);
            long cumulative = 0;
            for (int b = 0; b < LatencyBounds.Length; b++)
            {
                cumulative += Interlocked.Read(ref h.Buckets[b]);
                sb.Append(inv, $"recdistill_http_request_duration_seconds_bucket{{endpoint=\"{e}\",le=\"{LatencyBounds[b].ToString("R", inv)}\"}} {cumulative}\n");
            }
            cumulative += Interlocked.Read(ref h.Buckets[^1]);
            sb.Append(inv, $"recdistill_http_request_duration_seconds_bucket{{endpoint=\"{e}\",le=\"+Inf\"}} {cumulative}\n");
            sb.Append(inv, $"recdistill_http_request_duration_seconds_sum{{endpoint=\"{e}\"}} {(Interlocked.Read(ref h.SumTicks) / 1e7).ToString("R", inv)}\n");
            sb.Append(inv, $"recdistill_http_request_duration_seconds_count{{endpoint=\"{e}\"}} {cumulative}\n");
        }

        sb.Append("# HELP recdistill_http_requests_in_flight Requests being answered now.\n");
        sb.Append("# TYPE recdistill_http_requests_in_flight gauge\n");
        sb.Append(inv, $"recdistill_http_requests_in_flight {Interlocked.Read(ref _inFlight)}\n");

        sb.Append("# HELP recdistill_model_reloads_total Model files loaded (the first included) and refused.\n");
        sb.Append("# TYPE recdistill_model_reloads_total counter\n");
        sb.Append(inv, $"recdistill_model_reloads_total{{result=\"loaded\"}} {store.Loads}\n");
        sb.Append(inv, $"recdistill_model_reloads_total{{result=\"refused\"}} {store.Refusals}\n");

        var m = store.Current;
        sb.Append("# HELP recdistill_model_loaded 1 when a model is loaded and served, else 0.\n");
        sb.Append("# TYPE recdistill_model_loaded gauge\n");
        sb.Append(inv, $"recdistill_model_loaded {(m is null ? 0 : 1)}\n");
        if (m is not null)
        {
            sb.Append("# HELP recdistill_model_info The served model: SHA-256 of its file, the file's own checksum, shape and index.\n");
            sb.Append("# TYPE recdistill_model_info gauge\n");
            sb.Append(inv, $"recdistill_model_info{{sha256=\"{m.Sha256}\",checksum=\"{m.FormatChecksum}\",path=\"{Escape(m.Source)}\",backbone=\"{m.Backbone}\",precision=\"{m.Precision}\",dim=\"{m.Dim}\",users=\"{m.Users}\",items=\"{m.Items}\",index=\"{m.Index}\"}} 1\n");
            sb.Append("# HELP recdistill_model_loaded_timestamp_seconds When the served model was loaded (Unix time).\n");
            sb.Append("# TYPE recdistill_model_loaded_timestamp_seconds gauge\n");
            sb.Append(inv, $"recdistill_model_loaded_timestamp_seconds {(m.LoadedAt.ToUnixTimeMilliseconds() / 1000.0).ToString("R", inv)}\n");
            sb.Append("# HELP recdistill_model_load_duration_seconds How long loading the served model took (checks, tables and index).\n");
            sb.Append("# TYPE recdistill_model_load_duration_seconds gauge\n");
            sb.Append(inv, $"recdistill_model_load_duration_seconds {m.LoadSeconds.ToString("R", inv)}\n");
        }
        return sb.ToString();
    }

    /// <summary>A label value as the text format wants it: backslash, double quote and newline escaped.</summary>
    internal static string Escape(string value) =>
        value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);
}
