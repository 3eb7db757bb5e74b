using System.ComponentModel;

namespace RecDistill.Serving.Http;

// The JSON the service reads and writes (camelCase on the wire). Ids are strings.

/// <summary>A user's top-K: <c>{"user": "42", "items": [{"item": "7", "score": 3.1}, ...]}</c>, best first.</summary>
public sealed record UserRecommendations(string User, IReadOnlyList<ScoredItem> Items);

/// <summary>The answer to a batch: one entry per requested user, in request order.</summary>
public sealed record BatchRecommendations(IReadOnlyList<UserRecommendations> Results);

/// <summary>Top-K for a new user given their items (fold-in), best first; the given items are left out.</summary>
public sealed record FoldInRecommendations(IReadOnlyList<ScoredItem> Items);

/// <summary>The items most similar to one item (inner product of item vectors), best first; the item itself is left out.</summary>
public sealed record SimilarItems(string Item, IReadOnlyList<ScoredItem> Items);

/// <summary>The items with the most train interactions; score = that count.</summary>
public sealed record PopularItems(IReadOnlyList<ScoredItem> Items);

/// <summary>Body of POST /v1/recommendations.</summary>
public sealed record BatchRequest(
    [property: Description("User ids (strings), at most the server's batch limit.")] IReadOnlyList<string> Users,
    [property: Description("Items per user, 1 to the server's largest k; default 20.")] int? K);

/// <summary>Body of POST /v1/recommendations/from-items.</summary>
public sealed record FromItemsRequest(
    [property: Description("Ids (strings) of the items the new user interacted with; at least one.")] IReadOnlyList<string> Items,
    [property: Description("Items to return, 1 to the server's largest k; default 20.")] int? K);

/// <summary>GET /health: "ready" with the loaded model, or (503) "no model loaded".</summary>
public sealed record HealthStatus(string Status, ModelInfo? Model);

/// <summary>POST /admin/reload: "loaded" (a new model is served) or "unchanged" (the file holds the model already served).</summary>
public sealed record ReloadStatus(string Outcome, ModelInfo Model);
