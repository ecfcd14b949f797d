// kyso signing request from commune software, Java 11+ with only the JDK (java.net.http).
//
//   KYSO_URL=http://127.0.0.1:8000 KYSO_TOKEN=$(cat var/demo-client.token) \
//   java SignRequest.java CREDENTIAL_ID input.pdf signed.pdf
//
// 1. submit the PDF for the specialist's approval (POST /api/v1/sign/requests, multipart)
// 2. she approves it on /me with her PIN and a fresh code (nothing to do here: tell her)
// 3. poll GET /api/v1/sign/requests/{id} until it is decided
// 4. fetch the signed PDF (GET /api/v1/documents/{document_id}/file)
// Exit 0: signed and saved; 1: rejected, expired or failed; 2: an HTTP error (its JSON is printed).
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class SignRequest {
    static final String URL = System.getenv().getOrDefault("KYSO_URL", "http://127.0.0.1:8000");
    static final String TOKEN = System.getenv("KYSO_TOKEN");
    // HTTP/1.1: the JDK's default asks a plain-http server to upgrade to HTTP/2, which uvicorn refuses (400)
    static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    public static void main(String[] args) throws Exception {
        String credential = args[0];
        Path input = Path.of(args[1]), output = Path.of(args[2]);
        String metadata = "{\"defaults\": {\"document_type\": \"dossier-result\", \"commune_code\": \"00004\", "
                + "\"credential_id\": \"" + credential + "\", \"level\": \"B-LT\"}, \"items\": []}";

        // 1. submit: one "files" part per PDF, one "metadata" JSON part, an optional "note" for the specialist
        String boundary = "kyso-" + UUID.randomUUID();
        byte[] body = concat(
                part(boundary, "metadata", null, "application/json", metadata.getBytes(StandardCharsets.UTF_8)),
                part(boundary, "note", null, "text/plain; charset=utf-8",
                        "Hồ sơ 000.00.04.H26-250101-0001".getBytes(StandardCharsets.UTF_8)),
                part(boundary, "files", input.getFileName().toString(), "application/pdf", Files.readAllBytes(input)),
                ("--" + boundary + "--\r\n").getBytes(StandardCharsets.UTF_8));
        HttpResponse<String> submitted = send(HttpRequest.newBuilder(URI.create(URL + "/api/v1/sign/requests"))
                .header("Content-Type", "multipart/form-data; boundary=" + boundary)
                .POST(HttpRequest.BodyPublishers.ofByteArray(body)), 202);
        String id = field(submitted.body(), "id");
        System.out.println("request " + id + ": the specialist approves it at " + field(submitted.body(), "approve_url"));

        // 3. poll until it is decided (pending: waiting for her; approved: being signed)
        String status, answer;
        do {
            Thread.sleep(1000);
            answer = send(HttpRequest.newBuilder(URI.create(URL + "/api/v1/sign/requests/" + id)).GET(), 200).body();
            status = field(answer, "status");
        } while (status.equals("pending") || status.equals("approved"));
        System.out.println("status " + status);
        if (!status.equals("signed")) {
            System.exit(1);
        }

        // 4. fetch the signed PDF; verify_url is the address its QR code carries
        String document = field(answer, "document_id");
        HttpResponse<byte[]> pdf = HTTP.send(authorized(HttpRequest.newBuilder(
                URI.create(URL + "/api/v1/documents/" + document + "/file")).GET()).build(),
                HttpResponse.BodyHandlers.ofByteArray());
        if (pdf.statusCode() != 200) {
            System.err.println(new String(pdf.body(), StandardCharsets.UTF_8));
            System.exit(2);
        }
        Files.write(output, pdf.body());
        System.out.println("document " + document + " saved to " + output + "; verify at " + field(answer, "verify_url"));
    }

    static HttpRequest.Builder authorized(HttpRequest.Builder request) {
        return request.header("Authorization", "Bearer " + TOKEN).timeout(Duration.ofSeconds(60));
    }

    static HttpResponse<String> send(HttpRequest.Builder request, int expected) throws Exception {
        HttpResponse<String> response = HTTP.send(authorized(request).build(),
                HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
        if (response.statusCode() != expected) {  // {"error": {"code", "message", "details"}}
            System.err.println("HTTP " + response.statusCode() + ": " + response.body());
            System.exit(2);
        }
        return response;
    }

    static byte[] part(String boundary, String name, String filename, String type, byte[] content) {
        String head = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\""
                + (filename == null ? "" : "; filename=\"" + filename + "\"") + "\r\nContent-Type: " + type + "\r\n\r\n";
        return concat(head.getBytes(StandardCharsets.UTF_8), content, "\r\n".getBytes(StandardCharsets.UTF_8));
    }

    static byte[] concat(byte[]... parts) {
        int length = 0;
        for (byte[] p : parts) length += p.length;
        byte[] out = new byte[length];
        int at = 0;
        for (byte[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    // the first "name": "value" in a JSON answer (a real client would use its JSON library: Jackson, Gson)
    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + name + "\"\\s*:\\s*\"([^\"]*)\"").matcher(json);
        return m.find() ? m.group(1) : "";
    }
}
