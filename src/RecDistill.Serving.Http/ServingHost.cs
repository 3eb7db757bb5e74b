using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace RecDistill.Serving.Http;

/// <summary>
/// The HTTP service of `recdistill serve`: <see cref="Build"/> makes a ready Kestrel application, or a host
/// of your own takes <see cref="AddRecDistillServing"/> (services) and <see cref="UseRecDistillServing"/>
/// (the request pipeline with the endpoints).
/// </summary>
public static class ServingHost
{
    /// <summary>
    /// A web application listening on <see cref="ServingOptions.Urls"/>, the model loaded (unless
    /// <see cref="ServingOptions.StartWithoutModel"/>): a missing or damaged file throws here, before anything listens.
    /// Run it with <c>RunAsync</c>; SIGTERM or Ctrl+C stops accepting, lets requests in flight finish
    /// (up to <see cref="ServingOptions.ShutdownTimeout"/>) and returns.
    /// </summary>
    public static WebApplication Build(ServingOptions options, Action<WebApplicationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = Array.Empty<string>() });
        builder.WebHost.UseUrls(options.Urls);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            // Kestrel's default (8 KiB) would turn an exclude list well under MaxItemList into a bodiless 414.
            k.Limits.MaxRequestLineSize = options.MaxRequestLineBytes;
            k.Limits.MaxRequestHeadersTotalSize = Math.Max(k.Limits.MaxRequestHeadersTotalSize, options.MaxRequestLineBytes + 32 * 1024);
        });
        // One line per request would cost more than the request: the framework logs warnings and errors only,
        // start and stop (Microsoft.Hosting.Lifetime) and the service's own reload lines stay.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Services.AddRecDistillServing(options);
        configure?.Invoke(builder);
        var app = builder.Build();
        app.UseRecDistillServing();
        return app;
    }

    /// <summary>
    /// The service's dependencies: options, the model store (the model is loaded now unless
    /// <see cref="ServingOptions.StartWithoutModel"/>), the file watcher, metrics, problem details and OpenAPI.
    /// </summary>
    public static IServiceCollection AddRecDistillServing(this IServiceCollection services, ServingOptions options)
    {
        if (options.Check() is { } mistake) throw new ArgumentException(mistake, nameof(options));
        // Loaded here, not in a hosted service, so that a bad file is reported before the server listens.
        var initial = options.StartWithoutModel ? null : ModelAdapter.Load(options.ModelPath, options);
        services.AddRouting();
        services.AddSingleton(options);
        services.AddSingleton<ServingMetrics>();
        services.AddSingleton(sp => new ModelStore(options, initial, sp.GetRequiredService<ILogger<ModelStore>>()));
        services.AddHostedService<ModelFileWatcher>();
        services.AddProblemDetails(p => p.CustomizeProblemDetails = DescribeProblem);
        services.AddOpenApi(o => ServingOpenApi.Configure(o, options));
        services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);
        return services;
    }

    /// <summary>
    /// The request pipeline: problem details for every error (never a stack trace), routing, metrics per
    /// endpoint, and the endpoints of <see cref="ServingEndpoints.MapRecDistillEndpoints"/>.
    /// </summary>
    public static IApplicationBuilder UseRecDistillServing(this IApplicationBuilder app)
    {
        app.UseExceptionHandler(new ExceptionHandlerOptions { ExceptionHandler = WriteError });
        app.UseStatusCodePages();
        app.UseRouting();
        app.Use(Measure);
        app.UseEndpoints(e => e.MapRecDistillEndpoints());
        return app;
    }

    private static async Task Measure(HttpContext http, RequestDelegate next)
    {
        var metrics = http.RequestServices.GetRequiredService<ServingMetrics>();
        string endpoint = EndpointLabel(http.GetEndpoint());
        int status = StatusCodes.Status500InternalServerError;
        metrics.Begin();
        long started = Stopwatch.GetTimestamp();
        try
        {
            await next(http);
            status = http.Response.StatusCode;
        }
        catch (BadHttpRequestException e)
        {
            status = e.StatusCode;
            throw;
        }
        finally
        {
            metrics.End(endpoint, status, Stopwatch.GetElapsedTime(started));
        }
    }

    /// <summary>
    /// The endpoint's name (e.g. user_recommendations), else its route; "rejected" when routing answered for a
    /// route that does not take the request's method or content type (405, 415: a routing endpoint without a
    /// route), "unmatched" when no route matched the path (404).
    /// </summary>
    private static string EndpointLabel(Endpoint? endpoint) =>
        endpoint?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName
        ?? (endpoint as RouteEndpoint)?.RoutePattern.RawText
        ?? (endpoint is null ? "unmatched" : "rejected");

    /// <summary>
    /// Problems the framework answers by itself (no route, wrong method, a body that is not JSON) get a
    /// detail that says what to do; every problem names the request path as its instance.
    /// </summary>
    private static void DescribeProblem(ProblemDetailsContext c)
    {
        var request = c.HttpContext.Request;
        c.ProblemDetails.Instance ??= request.Path;
        c.ProblemDetails.Detail ??= c.ProblemDetails.Status switch
        {
            StatusCodes.Status404NotFound => $"no endpoint at {request.Path} (the endpoints are listed in /openapi/v1.json)",
            StatusCodes.Status405MethodNotAllowed => $"{request.Method} is not accepted at {request.Path}",
            StatusCodes.Status415UnsupportedMediaType => request.ContentType is null
                ? "send the body as application/json (no Content-Type was given)"
                : $"send the body as application/json, not '{request.ContentType}'",
            _ => null,
        };
    }

    /// <summary>An exception that escaped a handler: a problem-details answer with no internals (they go to the log).</summary>
    private static async Task WriteError(HttpContext http)
    {
        var error = http.Features.Get<IExceptionHandlerFeature>()?.Error;
        var (status, title, detail) = error is BadHttpRequestException bad
            ? (bad.StatusCode, bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "Request too large" : "Bad request", bad.Message)
            : (StatusCodes.Status500InternalServerError, "Internal error", "the server could not answer this request; its log has the details");
        http.Response.StatusCode = status;
        await ServingEndpoints.Problem(http, status, title, detail).ExecuteAsync(http);
    }
}
