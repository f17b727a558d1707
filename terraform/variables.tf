# Required inputs first; everything else has a safe default.

variable "name" {
  type        = string
  description = "Cluster name: prefixes every resource and is the cloud auto-join tag value."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,20}$", var.name))
    error_message = "Use 3-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "allowed_cidrs" {
  type        = list(string)
  description = "CIDR blocks allowed to reach the UIs/APIs (Nomad 4646, Consul 8501, Vault 8200) and SSH. Nothing is open to the world."

  validation {
    condition     = length(var.allowed_cidrs) > 0 && alltrue([for c in var.allowed_cidrs : can(cidrnetmask(c))])
    error_message = "Give at least one valid IPv4 CIDR, e.g. 203.0.113.7/32."
  }

  validation {
    condition     = !contains(var.allowed_cidrs, "0.0.0.0/0")
    error_message = "0.0.0.0/0 is refused: list the operator networks instead."
  }
}

variable "region" {
  type        = string
  description = "AWS region."
  default     = "eu-central-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "An AWS region name such as eu-central-1."
  }
}

variable "vpc_cidr" {
  type        = string
  description = "CIDR of the cluster VPC; two /24 subnets are carved from it."
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 22
    error_message = "A valid IPv4 CIDR of /22 or larger."
  }
}

variable "server_count" {
  type        = number
  description = "Nomad/Consul/Vault servers: 1 for a trial, 3 for a fault-tolerant quorum."
  default     = 3

  validation {
    condition     = contains([1, 3], var.server_count)
    error_message = "Run 1 or 3 servers."
  }
}

variable "client_count" {
  type        = number
  description = "Nomad clients that run the jobs."
  default     = 3

  validation {
    condition     = var.client_count >= 1 && var.client_count <= 20 && floor(var.client_count) == var.client_count
    error_message = "Between 1 and 20 clients."
  }
}

variable "server_instance_type" {
  type        = string
  description = "EC2 instance type of the servers."
  default     = "t3.medium"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*\\.[a-z0-9]+$", var.server_instance_type))
    error_message = "An EC2 instance type such as t3.medium."
  }
}

variable "client_instance_type" {
  type        = string
  description = "EC2 instance type of the clients."
  default     = "t3.large"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]*\\.[a-z0-9]+$", var.client_instance_type))
    error_message = "An EC2 instance type such as t3.large."
  }
}

variable "datacenter" {
  type        = string
  description = "Nomad and Consul datacenter name (the jobs' datacenters variable must match)."
  default     = "dc1"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.datacenter))
    error_message = "Lowercase letters, digits and dashes."
  }
}

variable "nomad_version" {
  type        = string
  description = "Nomad release installed on every node (checksum-verified)."
  default     = "1.8.4"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.nomad_version))
    error_message = "A release version such as 1.8.4."
  }
}

variable "consul_version" {
  type        = string
  description = "Consul release installed on every node (checksum-verified)."
  default     = "1.19.2"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.consul_version))
    error_message = "A release version such as 1.19.2."
  }
}

variable "vault_version" {
  type        = string
  description = "Vault release installed on the servers (checksum-verified)."
  default     = "1.17.6"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.vault_version))
    error_message = "A release version such as 1.17.6."
  }
}

variable "release_sha256" {
  type        = map(string)
  description = "Optional extra pin: expected SHA-256 of each linux_amd64 zip, keyed nomad/consul/vault. The signed SHA256SUMS is always checked."
  default     = {}

  validation {
    condition = alltrue([for k, v in var.release_sha256 :
    contains(["nomad", "consul", "vault"], k) && can(regex("^[0-9a-f]{64}$", v))])
    error_message = "Keys nomad, consul or vault; values 64 lowercase hex digits."
  }
}

variable "ssh_key_name" {
  type        = string
  description = "Existing EC2 key pair for SSH (tests/hosts specs); empty for none (use SSM Session Manager)."
  default     = ""

  validation {
    condition     = var.ssh_key_name == "" || can(regex("^[\\w .@+=,-]{1,255}$", var.ssh_key_name))
    error_message = "An EC2 key pair name, or empty."
  }
}

variable "root_volume_gb" {
  type        = number
  description = "Root volume size of every node, in GiB (encrypted gp3)."
  default     = 40

  validation {
    condition     = var.root_volume_gb >= 20 && var.root_volume_gb <= 500
    error_message = "Between 20 and 500 GiB."
  }
}

variable "log_retention_days" {
  type        = number
  description = "Retention of the VPC flow logs in CloudWatch."
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "A CloudWatch retention of at least one year (365, 400, 545, 731, ...)."
  }
}
