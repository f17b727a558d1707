# Firedrill on AWS: a VPC, 1 or 3 servers (Nomad + Consul + Vault) and N Nomad clients.
#
# Security posture: every API/UI port is reachable only from var.allowed_cidrs; TLS on Nomad,
# Consul and Vault with a CA made here; gossip encryption on; ACLs bootstrapped with tokens made
# here and delivered through SSM Parameter Store (SecureString, KMS); Vault auto-unseals with KMS
# and its init output (recovery key, initial root token) goes to SSM, never to the state or logs.

data "aws_availability_zones" "available" {
  state = "available"
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_ami" "ubuntu" {
  most_recent = true
  owners      = ["099720109477"] # Canonical

  filter {
    name   = "name"
    values = ["ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }
}

locals {
  azs            = slice(data.aws_availability_zones.available.names, 0, 2)
  subnet_cidrs   = [for i in range(2) : cidrsubnet(var.vpc_cidr, 8, i)]
  join_tag_key   = "FiredrillJoin"
  server_tag     = "${var.name}-server"
  ssm_prefix     = "/firedrill/${var.name}"
  server_ips     = [for i in range(var.server_count) : cidrhost(local.subnet_cidrs[i % 2], 10 + i)]
  account_arn    = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
  ssm_param_arns = "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${local.ssm_prefix}/*"
}

# --- encryption key ------------------------------------------------------------------------------

resource "aws_kms_key" "cluster" {
  description             = "${var.name}: SSM secrets, flow logs, Vault auto-unseal"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = local.account_arn }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncrypt"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:/firedrill/${var.name}/*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "cluster" {
  name          = "alias/firedrill-${var.name}"
  target_key_id = aws_kms_key.cluster.key_id
}

# --- network -----------------------------------------------------------------------------------------

resource "aws_vpc" "main" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.name }
}

resource "aws_default_security_group" "main" {
  # No rules: nothing may use the default group.
  vpc_id = aws_vpc.main.id
}

resource "aws_internet_gateway" "main" {
  vpc_id = aws_vpc.main.id
  tags   = { Name = var.name }
}

resource "aws_subnet" "public" {
  count                   = 2
  vpc_id                  = aws_vpc.main.id
  cidr_block              = local.subnet_cidrs[count.index]
  availability_zone       = local.azs[count.index]
  map_public_ip_on_launch = false

  tags = { Name = "${var.name}-${local.azs[count.index]}" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.main.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.main.id
  }

  tags = { Name = var.name }
}

resource "aws_route_table_association" "public" {
  count          = 2
  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public.id
}

resource "aws_cloudwatch_log_group" "flow" {
  name              = "/firedrill/${var.name}/vpc-flow"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.cluster.arn
}

resource "aws_iam_role" "flow" {
  name = "${var.name}-vpc-flow"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "vpc-flow-logs.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "flow" {
  name = "write-flow-logs"
  role = aws_iam_role.flow.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
      Resource = "${aws_cloudwatch_log_group.flow.arn}:*"
    }]
  })
}

resource "aws_flow_log" "main" {
  vpc_id          = aws_vpc.main.id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow.arn
  iam_role_arn    = aws_iam_role.flow.arn
}

# --- security groups ---------------------------------------------------------------------------------

resource "aws_security_group" "cluster" {
  name        = "${var.name}-cluster"
  description = "Firedrill nodes: each other, the operator allowlist, and outbound HTTPS"
  vpc_id      = aws_vpc.main.id

  ingress {
    description = "All traffic between cluster nodes (RPC, gossip, Nomad dynamic ports)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    self        = true
  }

  ingress {
    description = "Nomad HTTPS API and UI from the allowlist"
    from_port   = 4646
    to_port     = 4646
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  ingress {
    description = "Consul HTTPS API and UI from the allowlist"
    from_port   = 8501
    to_port     = 8501
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  ingress {
    description = "Vault HTTPS API and UI from the allowlist"
    from_port   = 8200
    to_port     = 8200
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  ingress {
    description = "SSH from the allowlist (tests/hosts specs)"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  ingress {
    description = "Nomad dynamic ports (Grafana, Prometheus, Alertmanager, Jaeger UIs) from the allowlist"
    from_port   = 20000
    to_port     = 32000
    protocol    = "tcp"
    cidr_blocks = var.allowed_cidrs
  }

  egress {
    description = "All traffic to cluster nodes"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    self        = true
  }

  egress {
    description = "VPC DNS resolver (UDP)"
    from_port   = 53
    to_port     = 53
    protocol    = "udp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description = "VPC DNS resolver (TCP, for truncated answers)"
    from_port   = 53
    to_port     = 53
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description = "HTTPS out: releases, package mirrors, container registries, AWS APIs"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "HTTP out: Ubuntu package mirrors (packages are signature-checked by apt)"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

# --- TLS: a cluster CA and one certificate per role ----------------------------------------------------

resource "tls_private_key" "ca" {
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_self_signed_cert" "ca" {
  private_key_pem       = tls_private_key.ca.private_key_pem
  is_ca_certificate     = true
  validity_period_hours = 24 * 365 * 2
  allowed_uses          = ["cert_signing", "crl_signing", "digital_signature"]

  subject {
    common_name  = "${var.name} cluster CA"
    organization = "Firedrill"
  }
}

resource "aws_eip" "server" {
  #checkov:skip=CKV2_AWS_19:Attached to its server through the server's primary network interface (aws_eip_association.server, network_interface_id) before launch, which this graph check does not follow
  count  = var.server_count
  domain = "vpc"
  tags   = { Name = "${var.name}-server-${count.index}" }

  # An Elastic IP can only be associated in a VPC whose internet gateway is attached.
  depends_on = [aws_internet_gateway.main]
}

# Each server boots on a network interface that already carries its Elastic IP: the subnets map
# no public IPs, so an EIP associated after launch (aws_eip_association on the instance) would
# leave the first minutes of user data, which download packages and releases, without any route
# out (no NAT gateway).
resource "aws_network_interface" "server" {
  count           = var.server_count
  subnet_id       = aws_subnet.public[count.index % 2].id
  private_ips     = [local.server_ips[count.index]]
  security_groups = [aws_security_group.cluster.id]
  tags            = { Name = "${var.name}-server-${count.index}" }
}

resource "aws_eip_association" "server" {
  count                = var.server_count
  allocation_id        = aws_eip.server[count.index].id
  network_interface_id = aws_network_interface.server[count.index].id
}

locals {
  # Nomad's HTTP API on a server as Vault (beside it on the same node) reaches it to fetch the
  # workload identity signing keys: loopback, so no security group is involved. 127.0.0.1 must be
  # an IP SAN of the server certificate for Vault to verify it against the cluster CA.
  nomad_jwks_url = "https://127.0.0.1:4646/.well-known/jwks.json"

  # SANs: loopback (local CLIs, Vault -> Nomad JWKS, bootstrap), the private IPs (peers, Vault
  # api_addr/raft), the Elastic IPs (operators), the names verify_server_hostname checks
  # (server.<region>.nomad, server.<dc>.consul) and the Consul DNS names the agents dial
  # (vault.service.consul from Nomad's vault block, nomad.service.consul for scrapers).
  tls_roles = {
    server = {
      dns = ["server.global.nomad", "server.${var.datacenter}.consul", "vault.service.consul", "active.vault.service.consul", "nomad.service.consul", "localhost"]
      ips = concat(["127.0.0.1"], local.server_ips, aws_eip.server[*].public_ip)
    }
    client = {
      dns = ["client.global.nomad", "client.${var.datacenter}.consul", "nomad-client.service.consul", "localhost"]
      ips = ["127.0.0.1"]
    }
  }
}

resource "tls_private_key" "node" {
  for_each    = local.tls_roles
  algorithm   = "ECDSA"
  ecdsa_curve = "P256"
}

resource "tls_cert_request" "node" {
  for_each        = local.tls_roles
  private_key_pem = tls_private_key.node[each.key].private_key_pem
  dns_names       = each.value.dns
  ip_addresses    = each.value.ips

  subject {
    common_name  = each.value.dns[0]
    organization = "Firedrill"
  }
}

resource "tls_locally_signed_cert" "node" {
  for_each              = local.tls_roles
  cert_request_pem      = tls_cert_request.node[each.key].cert_request_pem
  ca_private_key_pem    = tls_private_key.ca.private_key_pem
  ca_cert_pem           = tls_self_signed_cert.ca.cert_pem
  validity_period_hours = 24 * 365
  allowed_uses          = ["digital_signature", "key_encipherment", "server_auth", "client_auth"]
}

# --- bootstrap secrets, delivered through SSM ---------------------------------------------------------

resource "random_bytes" "consul_gossip" {
  length = 32
}

resource "random_bytes" "nomad_gossip" {
  length = 32
}

resource "random_uuid" "consul_management" {}

resource "random_uuid" "consul_agent" {}

resource "random_uuid" "consul_services" {}

resource "random_uuid" "nomad_management" {}

locals {
  ssm_secrets = merge(
    {
      "consul/gossip-key"       = random_bytes.consul_gossip.base64
      "nomad/gossip-key"        = random_bytes.nomad_gossip.base64
      "consul/management-token" = random_uuid.consul_management.result
      "consul/agent-token"      = random_uuid.consul_agent.result
      "consul/services-token"   = random_uuid.consul_services.result
      "nomad/management-token"  = random_uuid.nomad_management.result
      "tls/ca.pem"              = tls_self_signed_cert.ca.cert_pem
    },
    { for role in keys(local.tls_roles) : "tls/${role}.pem" => tls_locally_signed_cert.node[role].cert_pem },
    { for role in keys(local.tls_roles) : "tls/${role}-key.pem" => tls_private_key.node[role].private_key_pem },
  )
}

resource "aws_ssm_parameter" "secret" {
  for_each    = nonsensitive(toset(keys(local.ssm_secrets)))
  name        = "${local.ssm_prefix}/${each.key}"
  description = "Firedrill ${var.name} bootstrap material: ${each.key}"
  type        = "SecureString"
  tier        = "Advanced"
  key_id      = aws_kms_key.cluster.arn
  value       = local.ssm_secrets[each.key]
}

# --- IAM: cloud auto-join, SSM secrets, Vault KMS unseal -------------------------------------------------

data "aws_iam_policy_document" "assume_ec2" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  for_each           = toset(["server", "client"])
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.assume_ec2.json
}

data "aws_iam_policy_document" "node" {
  for_each = toset(["server", "client"])

  statement {
    sid       = "CloudAutoJoin"
    actions   = ["ec2:DescribeInstances", "ec2:DescribeTags"]
    resources = ["*"] # Describe* actions support no resource-level restriction
  }

  statement {
    sid       = "ReadBootstrapSecrets"
    actions   = ["ssm:GetParameter", "ssm:GetParameters"]
    resources = [local.ssm_param_arns]
  }

  statement {
    sid       = "DecryptSecrets"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = [aws_kms_key.cluster.arn]
  }

  dynamic "statement" {
    for_each = each.key == "server" ? [1] : []
    content {
      sid       = "VaultUnsealAndInitOutput"
      actions   = ["kms:Encrypt", "kms:GenerateDataKey", "ssm:PutParameter"]
      resources = [aws_kms_key.cluster.arn, "arn:${data.aws_partition.current.partition}:ssm:${var.region}:${data.aws_caller_identity.current.account_id}:parameter${local.ssm_prefix}/vault/init"]
    }
  }
}

resource "aws_iam_role_policy" "node" {
  for_each = toset(["server", "client"])
  name     = "firedrill-node"
  role     = aws_iam_role.node[each.key].id
  policy   = data.aws_iam_policy_document.node[each.key].json
}

resource "aws_iam_role_policy_attachment" "ssm_core" {
  for_each   = toset(["server", "client"])
  role       = aws_iam_role.node[each.key].name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "node" {
  for_each = toset(["server", "client"])
  name     = "${var.name}-${each.key}"
  role     = aws_iam_role.node[each.key].name
}

# --- nodes ----------------------------------------------------------------------------------------------

locals {
  bootstrap_common = {
    name           = var.name
    region         = var.region
    datacenter     = var.datacenter
    ssm_prefix     = local.ssm_prefix
    join_tag_key   = local.join_tag_key
    join_tag_value = local.server_tag
    server_count   = var.server_count
    nomad_version  = var.nomad_version
    consul_version = var.consul_version
    vault_version  = var.vault_version
    nomad_sha256   = lookup(var.release_sha256, "nomad", "")
    consul_sha256  = lookup(var.release_sha256, "consul", "")
    vault_sha256   = lookup(var.release_sha256, "vault", "")
    kms_key_id     = aws_kms_key.cluster.key_id
  }
}

resource "aws_instance" "server" {
  #checkov:skip=CKV_AWS_88:Servers carry an Elastic IP so operators reach the TLS+ACL-protected APIs; ingress is limited to var.allowed_cidrs
  count                = var.server_count
  ami                  = data.aws_ami.ubuntu.id
  instance_type        = var.server_instance_type
  iam_instance_profile = aws_iam_instance_profile.node["server"].name
  key_name             = var.ssh_key_name == "" ? null : var.ssh_key_name
  monitoring           = true
  ebs_optimized        = true

  network_interface {
    network_interface_id = aws_network_interface.server[count.index].id
    device_index         = 0
  }

  user_data = templatefile("${path.module}/templates/bootstrap.sh.tftpl", merge(local.bootstrap_common, {
    role  = "server"
    index = count.index
  }))
  user_data_replace_on_change = false

  metadata_options {
    http_tokens                 = "required"
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_gb
    encrypted   = true
    kms_key_id  = aws_kms_key.cluster.arn
  }

  tags = {
    Name                 = "${var.name}-server-${count.index}"
    (local.join_tag_key) = local.server_tag
    Role                 = "server"
  }

  # Boot only once the way out exists: the Elastic IP on the interface and the default route.
  depends_on = [aws_ssm_parameter.secret, aws_eip_association.server, aws_route_table_association.public]
}

resource "aws_instance" "client" {
  #checkov:skip=CKV_AWS_88:Clients need a public address for UIs on Nomad dynamic ports, reachable only from var.allowed_cidrs
  count                       = var.client_count
  ami                         = data.aws_ami.ubuntu.id
  instance_type               = var.client_instance_type
  subnet_id                   = aws_subnet.public[count.index % 2].id
  associate_public_ip_address = true
  vpc_security_group_ids      = [aws_security_group.cluster.id]
  iam_instance_profile        = aws_iam_instance_profile.node["client"].name
  key_name                    = var.ssh_key_name == "" ? null : var.ssh_key_name
  monitoring                  = true
  ebs_optimized               = true

  user_data = templatefile("${path.module}/templates/bootstrap.sh.tftpl", merge(local.bootstrap_common, {
    role  = "client"
    index = count.index
  }))

  metadata_options {
    http_tokens                 = "required"
    http_endpoint               = "enabled"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }

  root_block_device {
    volume_type = "gp3"
    volume_size = var.root_volume_gb
    encrypted   = true
    kms_key_id  = aws_kms_key.cluster.arn
  }

  tags = {
    Name = "${var.name}-client-${count.index}"
    Role = "client"
  }

  # Boot only once the default route to the internet gateway is in place (public IP at launch).
  depends_on = [aws_ssm_parameter.secret, aws_instance.server, aws_route_table_association.public]
}
