<?php
// kyso signing request from commune software, PHP 7.4+ with the curl extension (Debian: php-cli php-curl).
//
//   KYSO_URL=http://127.0.0.1:8000 KYSO_TOKEN=$(cat var/demo-client.token) \
//   php sign_request.php CREDENTIAL_ID input.pdf signed.pdf
//
// 1. submit the PDF for the specialist's approval (POST /api/v1/sign/requests, multipart)
// 2. she approves it on /me with her PIN and a fresh code (nothing to do here: tell her)
// 3. poll GET /api/v1/sign/requests/{id} until it is decided
// 4. fetch the signed PDF (GET /api/v1/documents/{document_id}/file)
// Exit 0: signed and saved; 1: rejected, expired or failed; 2: an HTTP error (its JSON is printed).

$url = getenv('KYSO_URL') ?: 'http://127.0.0.1:8000';
$token = getenv('KYSO_TOKEN');
[, $credential, $input, $output] = $argv;

function kyso(string $method, string $address, ?array $form = null, int $expected = 200): string
{
    global $token;
    $curl = curl_init($address);
    curl_setopt_array($curl, [
        CURLOPT_CUSTOMREQUEST => $method,
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_HTTPHEADER => ["Authorization: Bearer $token"],
        CURLOPT_TIMEOUT => 60,
    ]);
    if ($form !== null) {
        curl_setopt($curl, CURLOPT_POSTFIELDS, $form);  // an array with CURLFile: multipart/form-data
    }
    $body = curl_exec($curl);
    $status = curl_getinfo($curl, CURLINFO_RESPONSE_CODE);
    curl_close($curl);
    if ($body === false || $status !== $expected) {  // {"error": {"code", "message", "details"}}
        fwrite(STDERR, "HTTP $status: $body\n");
        exit(2);
    }
    return $body;
}

// 1. submit: one "files" part per PDF (files[0], files[1]… for several), one "metadata" JSON part, a note
$metadata = ['defaults' => ['document_type' => 'dossier-result', 'commune_code' => '00004',
                            'credential_id' => $credential, 'level' => 'B-LT'], 'items' => []];
$submitted = json_decode(kyso('POST', "$url/api/v1/sign/requests", [
    'metadata' => json_encode($metadata, JSON_UNESCAPED_UNICODE),
    'note' => 'Hồ sơ 000.00.04.H26-250101-0001',
    'files' => new CURLFile($input, 'application/pdf', basename($input)),
], 202), true);
echo "request {$submitted['id']}: the specialist approves it at {$submitted['approve_url']}\n";

// 3. poll until it is decided (pending: waiting for her; approved: being signed)
do {
    sleep(1);
    $request = json_decode(kyso('GET', "$url/api/v1/sign/requests/{$submitted['id']}"), true);
} while (in_array($request['status'], ['pending', 'approved'], true));
echo "status {$request['status']}\n";
if ($request['status'] !== 'signed') {
    exit(1);
}

// 4. fetch the signed PDF; verify_url is the address its QR code carries
$item = $request['items'][0];
file_put_contents($output, kyso('GET', "$url/api/v1/documents/{$item['document_id']}/file"));
echo "document {$item['document_id']} saved to $output; verify at {$item['verify_url']}\n";
