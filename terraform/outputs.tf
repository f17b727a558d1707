output "nomad_ui" {
  description = "Nomad UI and API (HTTPS, ACL token required)."
  value       = "https://${aws_eip.server[0].public_ip}:4646"
}

output "consul_ui" {
  description = "Consul UI and API (HTTPS, ACL token required)."
  value       = "https://${aws_eip.server[0].public_ip}:8501"
}

output "vault_ui" {
  description = "Vault UI and API (HTTPS)."
  value       = "https://${aws_eip.server[0].public_ip}:8200"
}

output "server_public_ips" {
  description = "Elastic IPs of the servers (allowlisted SSH for tests/hosts)."
  value       = aws_eip.server[*].public_ip
}

output "client_public_ips" {
  description = "Public IPs of the Nomad clients (UIs on dynamic ports, allowlisted)."
  value       = aws_instance.client[*].public_ip
}

output "nomad_jwks_url" {
  description = "Nomad's workload identity keys as Vault sees them: Vault runs on the server nodes, so it reads them over loopback (127.0.0.1 is a SAN of the server certificate). Export it as FIREDRILL_NOMAD_JWKS_URL for make vault-bootstrap."
  value       = local.nomad_jwks_url
}

output "ca_cert_pem" {
  description = "The cluster CA certificate: write it to firedrill-ca.pem (see env)."
  value       = tls_self_signed_cert.ca.cert_pem
}

output "ssm_prefix" {
  description = "SSM Parameter Store path of the bootstrap material (tokens, Vault init output)."
  value       = local.ssm_prefix
}

output "env" {
  description = "Shell lines to export: eval \"$(terraform output -raw env)\". Tokens are read from SSM, never printed by terraform."
  value       = <<-EOT
    terraform output -raw ca_cert_pem > firedrill-ca.pem
    export NOMAD_ADDR=https://${aws_eip.server[0].public_ip}:4646
    export NOMAD_CACERT="$PWD/firedrill-ca.pem"
    export NOMAD_TOKEN="$(aws ssm get-parameter --region ${var.region} --with-decryption --name ${local.ssm_prefix}/nomad/management-token --query Parameter.Value --output text)"
    export CONSUL_HTTP_ADDR=https://${aws_eip.server[0].public_ip}:8501
    export CONSUL_CACERT="$PWD/firedrill-ca.pem"
    export CONSUL_HTTP_TOKEN="$(aws ssm get-parameter --region ${var.region} --with-decryption --name ${local.ssm_prefix}/consul/management-token --query Parameter.Value --output text)"
    export VAULT_ADDR=https://${aws_eip.server[0].public_ip}:8200
    export VAULT_CACERT="$PWD/firedrill-ca.pem"
    export VAULT_TOKEN="$(aws ssm get-parameter --region ${var.region} --with-decryption --name ${local.ssm_prefix}/vault/init --query Parameter.Value --output text | jq -r .root_token)"
    export FIREDRILL_CA_FILE="$PWD/firedrill-ca.pem"
    export FIREDRILL_NOMAD_JWKS_URL=${local.nomad_jwks_url}
  EOT
}
