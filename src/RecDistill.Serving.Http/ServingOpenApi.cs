using System.Text.Json.Nodes;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace RecDistill.Serving.Http;

/// <summary>The OpenAPI document (/openapi/v1.json): the framework's, with the title and the query parameters described.</summary>
internal static class ServingOpenApi
{
    public static void Configure(OpenApiOptions openApi, ServingOptions options)
    {
        openApi.AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "RecDistill serving";
            document.Info.Description = "Top-K recommendations from an exported RecDistill model. Ids are strings. " +
                "Errors are RFC 9457 problem details (application/problem+json).";
            return Task.CompletedTask;
        });
        // The handlers read k and exclude themselves (to name mistakes precisely); the document says what they accept.
        openApi.AddOperationTransformer((operation, _, _) =>
        {
            foreach (var p in operation.Parameters?.OfType<OpenApiParameter>() ?? [])
            {
                if (p.Name == "k")
                {
                    p.Description = $"Items to return: a whole number from 1 to {options.MaxK}; default {options.DefaultK}.";
                    p.Schema = new OpenApiSchema
                    {
                        Type = JsonSchemaType.Integer, Minimum = "1", Maximum = options.MaxK.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        Default = JsonValue.Create(options.DefaultK),
                    };
                }
                else if (p.Name == "exclude")
                {
                    p.Description = $"Item ids to leave out besides the user's train items, comma-separated (at most {options.MaxItemList}); ids the model does not hold are ignored.";
                }
            }
            return Task.CompletedTask;
        });
    }
}
