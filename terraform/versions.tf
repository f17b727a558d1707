terraform {
  # 1.7.0: nonsensitive() stopped refusing values that are not sensitive (CHANGELOG 1.7.0, #33856);
  # main.tf calls it on the keys of local.ssm_secrets, which are not sensitive, so 1.6 fails.
  required_version = ">= 1.7.0, < 2.0.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.70"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "firedrill"
      Cluster   = var.name
      ManagedBy = "terraform"
    }
  }
}
