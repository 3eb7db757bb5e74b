using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;

namespace RecDistill.Serving.Http;

/// <summary>The routes of the service and their handlers (minimal APIs).</summary>
public static class ServingEndpoints
{
    /// <summary>
    /// Maps /v1/users/{id}/recommendations, /v1/recommendations, /v1/recommendations/from-items,
    /// /v1/items/{id}/similar, /v1/items/popular, /health, /metrics, /admin/reload and /openapi/v1.json.
    /// The services come from <see cref="ServingHost.AddRecDistillServing"/>.
    /// </summary>
    public static IEndpointRouteBuilder MapRecDistillEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var v1 = endpoints.MapGroup("/v1").WithTags("recommendations");
        v1.MapGet("/users/{id}/recommendations", UserRecommendations).WithName("user_recommendations")
            .WithSummary("Top-K items for a known user, best first; the user's train items and the excluded items are left out.")
            .Produces<UserRecommendations>().ProducesProblem(400).ProducesProblem(404).ProducesProblem(503);
        v1.MapPost("/recommendations", Batch).WithName("batch_recommendations")
            .WithSummary("Top-K items for each user of a batch, in request order.")
            .Accepts<BatchRequest>("application/json").Produces<BatchRecommendations>()
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(413).ProducesProblem(415).ProducesProblem(503);
        v1.MapPost("/recommendations/from-items", FromItems).WithName("from_items_recommendations")
            .WithSummary("Top-K items for a new user from the items they interacted with (fold-in); those items are left out.")
            .Accepts<FromItemsRequest>("application/json").Produces<FoldInRecommendations>()
            .ProducesProblem(400).ProducesProblem(404).ProducesProblem(413).ProducesProblem(415).ProducesProblem(503);
        v1.MapGet("/items/{id}/similar", Similar).WithName("similar_items")
            .WithSummary("The items whose vectors have the largest inner product with this item's; the item itself is left out.")
            .Produces<SimilarItems>().ProducesProblem(400).ProducesProblem(404).ProducesProblem(503);
        v1.MapGet("/items/popular", Popular).WithName("popular_items")
            .WithSummary("The items with the most train interactions (score = that count): a cold-start fallback the caller chooses.")
            .Produces<PopularItems>().ProducesProblem(400).ProducesProblem(503);

        var ops = endpoints.MapGroup("").WithTags("operations");
        ops.MapGet("/health", Health).WithName("health")
            .WithSummary("200 with the loaded model when ready; 503 while no model is loaded.")
            .Produces<HealthStatus>().Produces<HealthStatus>(503);
        ops.MapGet("/metrics", Metrics).WithName("metrics")
            .WithSummary("Prometheus text format: requests by endpoint and status, latency histogram, the model's checksum and load time.")
            .Produces<string>(200, "text/plain");
        ops.MapPost("/admin/reload", Reload).WithName("reload")
            .WithSummary("Loads the model file again beside the served one (loopback clients only); a refused file leaves the old model serving.")
            .Produces<ReloadStatus>().ProducesProblem(403).ProducesProblem(422);
        endpoints.MapOpenApi();
        return endpoints;
    }

    private static IResult UserRecommendations(string id, HttpContext http, ModelStore store, ServingOptions options,
        [FromQuery(Name = "k")] string? k = null, [FromQuery(Name = "exclude")] string? exclude = null) =>
        // k and exclude are declared for the OpenAPI document; RequestInput reads and checks them itself.
        Answer(http, store, () =>
        {
            RequestInput.CheckQuery(http.Request, "k", "exclude");
            int top = RequestInput.K(http.Request, options);
            var excluded = RequestInput.IdList(http.Request, "exclude", options);
            return m => new UserRecommendations(id, m.Recommend(id, top, excluded));
        });

    private static Task<IResult> Batch(HttpContext http, ModelStore store, ServingOptions options) =>
        AnswerIdList(http, store, options, "users", options.MaxBatchUsers, (m, users, top) =>
        {
            var lists = m.RecommendBatch(users, top);
            return new BatchRecommendations(users.Select((u, j) => new UserRecommendations(u, lists[j])).ToArray());
        });

    private static Task<IResult> FromItems(HttpContext http, ModelStore store, ServingOptions options) =>
        AnswerIdList(http, store, options, "items", options.MaxItemList, (m, items, top) => new FoldInRecommendations(m.RecommendFromItems(items, top)));

    private static IResult Similar(string id, HttpContext http, ModelStore store, ServingOptions options,
        [FromQuery(Name = "k")] string? k = null) =>
        Answer(http, store, () =>
        {
            RequestInput.CheckQuery(http.Request, "k");
            int top = RequestInput.K(http.Request, options);
            return m => new SimilarItems(id, m.Similar(id, top));
        });

    private static IResult Popular(HttpContext http, ModelStore store, ServingOptions options, [FromQuery(Name = "k")] string? k = null) =>
        Answer(http, store, () =>
        {
            RequestInput.CheckQuery(http.Request, "k");
            int top = RequestInput.K(http.Request, options);
            return m => new PopularItems(m.Popular(top));
        });

    private static IResult Health(ModelStore store) =>
        store.Current is { } model
            ? TypedResults.Ok(new HealthStatus("ready", model))
            : TypedResults.Json(new HealthStatus("no model loaded", null), statusCode: StatusCodes.Status503ServiceUnavailable);

    private static IResult Metrics(ServingMetrics metrics, ModelStore store) =>
        TypedResults.Text(metrics.Render(store), "text/plain; version=0.0.4; charset=utf-8");

    private static async Task<IResult> Reload(HttpContext http, ModelStore store)
    {
        if (!FromLoopback(http))
            return Problem(http, StatusCodes.Status403Forbidden, "Forbidden", "POST /admin/reload is accepted from loopback addresses only");
        var result = await Task.Run(() => store.Reload("POST /admin/reload"));
        if (result.Outcome == ReloadOutcome.Refused)
            return Problem(http, StatusCodes.Status422UnprocessableEntity, "Model file refused",
                $"{result.Error}; " + (result.Model is null ? "no model is loaded" : $"still serving the model with sha256 {result.Model.Sha256}"));
        return TypedResults.Ok(new ReloadStatus(result.Outcome.ToString().ToLowerInvariant(), result.Model!));
    }

    /// <summary>A direct loopback client: not one relayed by a proxy on this host (which would add a forwarding header).</summary>
    private static bool FromLoopback(HttpContext http) =>
        http.Connection.RemoteIpAddress is { } ip && IPAddress.IsLoopback(ip)
        && !http.Request.Headers.ContainsKey("X-Forwarded-For") && !http.Request.Headers.ContainsKey("Forwarded");

    /// <summary>Checks the input (<paramref name="prepare"/>), then answers from the current model under a lease.</summary>
    private static IResult Answer(HttpContext http, ModelStore store, Func<Func<ModelAdapter, object>> prepare)
    {
        try
        {
            return Run(http, store, prepare());
        }
        catch (RequestProblem p)
        {
            return Problem(http, p.Status, p.Title, p.Detail);
        }
    }

    /// <summary>
    /// A POST whose JSON body is <c>{"LIST": [ids], "k": K}</c>: the body is read and checked (content type,
    /// size, shape; more than <paramref name="max"/> ids is 413), then the query answers from the current model.
    /// </summary>
    private static async Task<IResult> AnswerIdList(HttpContext http, ModelStore store, ServingOptions options, string list, int max,
        Func<ModelAdapter, IReadOnlyList<string>, int, object> query)
    {
        try
        {
            RequestInput.CheckQuery(http.Request);
            var body = await RequestInput.JsonObject(http.Request, options, list, "k");
            var ids = RequestInput.Ids(body, list, max, StatusCodes.Status413PayloadTooLarge);
            int top = RequestInput.K(body, options);
            return Run(http, store, m => query(m, ids, top));
        }
        catch (RequestProblem p)
        {
            return Problem(http, p.Status, p.Title, p.Detail);
        }
    }

    private static IResult Run(HttpContext http, ModelStore store, Func<ModelAdapter, object> query)
    {
        using var lease = store.Acquire();
        if (lease is null)
            return Problem(http, StatusCodes.Status503ServiceUnavailable, "No model loaded",
                "the service has no model loaded yet; GET /health answers 200 once it has");
        try
        {
            return TypedResults.Ok(query(lease.Model));
        }
        catch (UnknownIdException u)
        {
            return Problem(http, StatusCodes.Status404NotFound, $"Unknown {u.Kind}", u.Message,
                new Dictionary<string, object?> { ["kind"] = u.Kind, ["id"] = u.Id });
        }
    }

    internal static IResult Problem(HttpContext http, int status, string title, string detail, IDictionary<string, object?>? extensions = null) =>
        TypedResults.Problem(detail, http.Request.Path, status, title, extensions: extensions);
}
